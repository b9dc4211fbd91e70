/* policy_yaml.c - fuzz target: sluicectl's policy file loader
 * (ctl/policy_yaml.c on libyaml) and what sluicectl does next: the shared
 * validation (lib/policy_check.c) and the export.  Invariants: an error
 * always has a message; a parsed policy emits YAML that parses again and
 * emits the same text (export | apply is a fixed point).
 * secret_file/password_file may name any path: stdin is /dev/null here so
 * "/dev/stdin" cannot block a run; the environment is emptied. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "log.h"
#include "policy_yaml.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd;

	(void)argc;
	(void)argv;
	log_init("fuzz-policy-yaml", false);
	/* Only the seeds' secret_env: a password_env that resolves costs an
	 * scrypt hash (~50 ms) per run, which would starve the fuzzer. */
	clearenv();
	setenv("FUZZ_SECRET", "fuzz-secret", 1);
	if ((fd = open("/dev/null", O_RDONLY)) != -1) {
		dup2(fd, 0);
		close(fd);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_lines *lines = NULL, *lines2 = NULL;
	struct policy_error perr;
	Sluice__Policy *p, *p2;
	char err[512], err2[512], *y, *y2;

	if (size > 64 * 1024)
		return 0;
	err[0] = '\0';
	p = policy_yaml_parse(
	    (const char *)data, size, "fuzz.yaml", &lines, err, sizeof(err));
	if (p == NULL) {
		FUZZ_ASSERT(err[0] != '\0');
		return 0;
	}
	FUZZ_ASSERT(lines != NULL);
	(void)policy_lines_get(lines, "hops", 0);
	(void)policy_lines_get(lines, "users", 1000);
	(void)policy_check(p, POLICY_CHECK_APPLY, &perr);

	y = policy_yaml_emit(p);
	FUZZ_ASSERT(y != NULL);
	p2 = policy_yaml_parse(
	    y, strlen(y), "export.yaml", &lines2, err2, sizeof(err2));
	if (p2 == NULL)
		fprintf(
		    stderr, "export does not parse: %s\n---\n%s---\n", err2, y);
	FUZZ_ASSERT(p2 != NULL);
	y2 = policy_yaml_emit(p2);
	FUZZ_ASSERT(y2 != NULL);
	if (strcmp(y, y2) != 0)
		fprintf(stderr, "export is not a fixed point:\n%s---\n%s---\n",
		    y, y2);
	FUZZ_ASSERT(strcmp(y, y2) == 0);
	free(y);
	free(y2);
	policy_lines_free(lines2);
	sluice__policy__free_unpacked(p2, NULL);
	policy_lines_free(lines);
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}
