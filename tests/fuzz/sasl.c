/* sasl.c - fuzz target: AUTH decoding in node/smtp_parse.c (strict base64,
 * PLAIN's authzid/authcid/passwd, LOGIN items).  The first byte picks the
 * output capacity (the decoder must refuse, not overflow, when it is too
 * small).  Invariants: decoded length fits the capacity and 3/4 of the
 * input; a decoded value re-encodes to a string that decodes to the same
 * octets; encoding arbitrary octets always decodes back to them (the
 * decoder accepts everything the encoder makes); PLAIN and LOGIN results
 * are NUL-terminated within their buffers and contain no NUL. */
#include <string.h>

#include "fuzz.h"
#include "smtp_parse.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *dec, *enc, *dec2, user[SMTP_SASL_USER_MAX],
	    pass[SMTP_SASL_PASS_MAX], item[SMTP_SASL_PASS_MAX];
	const char *in;
	size_t len, cap, dlen, d2len;

	if (size < 1 || size > 4 * SMTP_SASL_MAX)
		return 0;
	in = (const char *)data + 1;
	len = size - 1;
	cap = data[0] == 0xff ? len : (size_t)data[0] * 4;
	dec = malloc(cap + 1);
	dec2 = malloc(len + 1);
	enc = malloc(4 * ((len + 2) / 3) + 1);
	if (dec == NULL || dec2 == NULL || enc == NULL)
		goto out;

	/* Any octets: encode then decode is the identity. */
	smtp_b64_encode(in, len, enc);
	FUZZ_ASSERT(strlen(enc) == 4 * ((len + 2) / 3));
	FUZZ_ASSERT(
	    smtp_b64_decode(enc, strlen(enc), dec2, len + 1, &d2len) == 0);
	FUZZ_ASSERT(d2len == len && memcmp(dec2, in, len) == 0);

	if (smtp_b64_decode(in, len, dec, cap, &dlen) == 0) {
		FUZZ_ASSERT(dlen <= cap && dlen <= len / 4 * 3);
		free(enc);
		enc = malloc(4 * ((dlen + 2) / 3) + 1);
		if (enc == NULL)
			goto out;
		smtp_b64_encode(dec, dlen, enc);
		FUZZ_ASSERT(smtp_b64_decode(
		                enc, strlen(enc), dec2, len + 1, &d2len) == 0);
		FUZZ_ASSERT(d2len == dlen && memcmp(dec2, dec, dlen) == 0);

		if (smtp_sasl_plain(dec, dlen, user, sizeof(user), pass,
		        sizeof(pass)) == 0) {
			FUZZ_ASSERT(memchr(user, '\0', sizeof(user)) != NULL);
			FUZZ_ASSERT(memchr(pass, '\0', sizeof(pass)) != NULL);
			/* authcid NUL passwd are in the payload */
			FUZZ_ASSERT(strlen(user) + strlen(pass) + 2 <= dlen);
		}
		if (smtp_sasl_login_item(dec, dlen, item, sizeof(item)) == 0)
			FUZZ_ASSERT(strlen(item) == dlen);
	}
out:
	free(dec);
	free(dec2);
	free(enc);
	return 0;
}
