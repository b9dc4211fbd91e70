/* fuzz_smtp_parse.c - libFuzzer target for node/smtp_parse.c: the first
 * byte picks the parser, the rest is peer input.  Invariants are checked
 * with abort(): the DATA reader never writes past len + 2 octets and never
 * reports an end of data other than CRLF.CRLF. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_data(const char *in, size_t len)
{
	char *out = malloc(len + 2);
	struct smtp_data d;
	size_t used, olen, off = 0, step;

	if (out == NULL)
		return;
	smtp_data_init(&d);
	while (off < len && d.state != SMTP_DATA_DONE) {
		step = (len - off) > 7 ? 7 : len - off;
		used = smtp_data_feed(&d, in + off, step, out, &olen);
		if (used > step || olen > step + 2)
			abort();
		off += used;
	}
	/* the end of data is exactly CRLF.CRLF (DATA's CRLF counts) */
	if (d.state == SMTP_DATA_DONE &&
	    !(off >= 3 && memcmp(in + off - 3, ".\r\n", 3) == 0 &&
	        (off == 3 ||
	            (off >= 5 && memcmp(in + off - 5, "\r\n", 2) == 0))))
		abort();
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, buf[SMTP_SASL_MAX], user[SMTP_SASL_USER_MAX],
	    pass[SMTP_SASL_PASS_MAX];
	struct smtp_mail_params mp;
	struct smtp_path p;
	struct smtp_reply err;
	struct smtp_cmd cmd;
	size_t used, linelen, n;
	bool bad, ended;

	if (size < 1)
		return 0;
	n = size - 1;
	if ((s = malloc(n + 1)) == NULL)
		return 0;
	memcpy(s, data + 1, n);
	s[n] = '\0';
	switch (data[0] % 7) {
	case 0:
		smtp_cmd_line(
		    s, n, SMTP_CMD_MAX, &used, &linelen, &bad, &ended);
		if (used > n)
			abort();
		break;
	case 1:
		smtp_cmd_parse(s, &cmd);
		break;
	case 2:
		if (smtp_parse_mail(s, &p, &mp, &err) == 0)
			smtp_path_check(&p, false, mp.smtputf8, &err);
		break;
	case 3:
		if (smtp_parse_rcpt(s, &p, &err) == 0)
			smtp_path_check(&p, false, false, &err);
		break;
	case 4:
		fuzz_data(s, n);
		break;
	case 5:
		if (smtp_b64_decode(s, n, buf, sizeof(buf), &used) == 0)
			smtp_sasl_plain(
			    buf, used, user, sizeof(user), pass, sizeof(pass));
		break;
	case 6:
		smtp_message_id(s, n, buf, 512);
		break;
	}
	free(s);
	return 0;
}
