/* replay.c - main() for fuzz targets in builds without libFuzzer (gcc,
 * the plain and sanitizer CI builds): feeds every file named on the
 * command line, or found in a directory named there, through
 * LLVMFuzzerTestOneInput once.  So the committed corpora are exercised by
 * CTest everywhere, and a crash file from a fuzzing run replays with
 * `replay_TARGET crash-...` under gdb.  Exit status: 0, or 1 when a path
 * cannot be read (a target's own failure is an abort()). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int
replay_file(const char *path, size_t *count)
{
	FILE *f;
	uint8_t *buf;
	long len;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) == -1 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1) {
		fprintf(stderr, "replay: %s: cannot size\n", path);
		fclose(f);
		return -1;
	}
	/* An exact-size copy: ASan sees any read past the input. */
	if ((buf = malloc(len > 0 ? (size_t)len : 1)) == NULL ||
	    fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "replay: %s: read failed\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	(*count)++;
	return 0;
}

static int
replay_path(const char *path, size_t *count)
{
	struct dirent **ents;
	struct stat st;
	char sub[4096];
	int i, n, rv = 0;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path, count);
	/* Sorted, so a failure names the same file on every machine. */
	if ((n = scandir(path, &ents, NULL, alphasort)) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.') {
			snprintf(
			    sub, sizeof(sub), "%s/%s", path, ents[i]->d_name);
			if (replay_path(sub, count) == -1)
				rv = -1;
		}
		free(ents[i]);
	}
	free(ents);
	return rv;
}

int
main(int argc, char **argv)
{
	size_t count = 0;
	int i, rv = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++)
		if (argv[i][0] != '-' && replay_path(argv[i], &count) == -1)
			rv = 1;
	printf("replay: %zu inputs, no failure\n", count);
	return rv;
}
