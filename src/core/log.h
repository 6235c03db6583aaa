/* log.h — one logging macro for the whole program. The level is checked before the arguments
 * are evaluated; format strings are checked by the compiler. Never log secrets. */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

enum berth_log_level { BERTH_LOG_DEBUG = 0, BERTH_LOG_INFO, BERTH_LOG_WARN, BERTH_LOG_ERROR };

extern int berth_log_level_current;

void berth_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define berth_log(level, ...)                                                                    \
	do {                                                                                       \
		if ((level) >= berth_log_level_current) berth_log_write((level), __VA_ARGS__);     \
	} while (0)

/* "debug" / "info" / "warn" / "error" → level; -1 when unknown. */
int berth_log_level_parse(const char *s);

#endif
