/* smtp_cmd.c - fuzz target: the inbound command stream as the session
 * sees it (node/smtp_parse.c).  The input is split into lines by
 * smtp_cmd_line exactly as smtp_session.c does (ceiling 512, or 12288
 * after AUTH), each clean line goes through smtp_cmd_parse and, for MAIL
 * and RCPT, the path and parameter parsers and the relay-trick verdict.
 * Invariants: consumption stays within the input, a line is shorter than
 * what it consumed, parsed paths are NUL-terminated within their buffer,
 * and an error verdict always carries a 5xx/4xx reply. */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "smtp_parse.h"

static void
fuzz_line(const char *line)
{
	struct smtp_mail_params mp;
	struct smtp_reply err;
	struct smtp_path p;
	struct smtp_cmd cmd;
	int rv;

	smtp_cmd_parse(line, &cmd);
	FUZZ_ASSERT(smtp_verb_name(cmd.verb) != NULL);
	FUZZ_ASSERT(cmd.arg != NULL);
	FUZZ_ASSERT(cmd.verb == SMTP_UNKNOWN ||
	            (cmd.arg >= line && cmd.arg <= line + strlen(line)));
	memset(&err, 0, sizeof(err));
	switch (cmd.verb) {
	case SMTP_MAIL:
		rv = smtp_parse_mail(cmd.arg, &p, &mp, &err);
		break;
	case SMTP_RCPT:
		rv = smtp_parse_rcpt(cmd.arg, &p, &err);
		memset(&mp, 0, sizeof(mp));
		break;
	default:
		return;
	}
	if (rv == -1) {
		FUZZ_ASSERT(err.code >= 400 && err.code < 600);
		FUZZ_ASSERT(err.enhanced[0] != '\0' && err.text[0] != '\0');
		return;
	}
	FUZZ_ASSERT(rv == 0);
	FUZZ_ASSERT(memchr(p.addr, '\0', sizeof(p.addr)) != NULL);
	FUZZ_ASSERT(cmd.verb != SMTP_RCPT || p.addr[0] != '\0');
	FUZZ_ASSERT(mp.size >= -1);
	/* trusted clients only meet the SMTPUTF8 rule */
	if (smtp_path_check(&p, true, mp.smtputf8, &err) == -1)
		FUZZ_ASSERT(err.code == 553);
	if (smtp_path_check(&p, false, mp.smtputf8, &err) == -1)
		FUZZ_ASSERT(err.code == 553);
	else
		FUZZ_ASSERT((p.flags & ~SMTP_ADDR_UTF8) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[SMTP_SASL_MAX + 1];
	size_t off = 0, used, linelen, max = SMTP_CMD_MAX;
	bool bad, ended;
	int rv;

	while (off < size) {
		rv = smtp_cmd_line((const char *)data + off, size - off, max,
		    &used, &linelen, &bad, &ended);
		if (rv == 0) {
			FUZZ_ASSERT(used == 0);
			break;
		}
		FUZZ_ASSERT(used > 0 && used <= size - off);
		if (rv == -1) {
			off += used;
			continue;
		}
		FUZZ_ASSERT(rv == 1);
		FUZZ_ASSERT(linelen < used && linelen < max);
		if (!bad) {
			memcpy(line, data + off, linelen);
			line[linelen] = '\0';
			FUZZ_ASSERT(strlen(line) == linelen);
			fuzz_line(line);
			/* the session reads AUTH responses with the SASL cap */
			max = strncasecmp(line, "AUTH", 4) == 0 ? SMTP_SASL_MAX
			                                        : SMTP_CMD_MAX;
		}
		off += used;
	}
	return 0;
}
