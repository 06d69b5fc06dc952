/*
 * fileio.h - bounded whole-file reads for certificates, keys, record lists and configuration.
 */
#ifndef DANEPROXY_FILEIO_H
#define DANEPROXY_FILEIO_H

#include <stddef.h>

/*
 * file_read_all - read path into a NUL-terminated malloc'd buffer of at most max bytes.
 * Returns 0, or -1 with a message (missing, unreadable, a directory, larger than max) in err.
 */
int file_read_all(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen);

#endif
