#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int berth_log_level_current = BERTH_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void berth_log_write(int level, const char *fmt, ...)
{
	char line[2048];
	char ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	if (level < BERTH_LOG_DEBUG || level > BERTH_LOG_ERROR) level = BERTH_LOG_ERROR;
	n = snprintf(line, sizeof line, "%s.%03ldZ %-5s ", ts, now.tv_nsec / 1000000L,
		     level_names[level]);
	if (n < 0 || (size_t)n >= sizeof line) return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	/* One fputs per line so lines from several threads never interleave (stdio locks). */
	size_t l = strlen(line);
	if (l + 1 < sizeof line) {
		line[l] = '\n';
		line[l + 1] = '\0';
	}
	fputs(line, stderr);
}

int berth_log_level_parse(const char *s)
{
	if (!s) return -1;
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0) return i;
	if (strcmp(s, "warning") == 0) return BERTH_LOG_WARN;
	return -1;
}
