/*
 * fileio.h - bounded whole-file reads for certificates, keys, trust anchors, record lists and configuration.
 *
 * Every file daneproxy reads at start-up comes through here, so that a FIFO, a device or a huge file named where a
 * small regular file is expected is refused at once with a message, never read forever or waited on.
 */
#ifndef DANEPROXY_FILEIO_H
#define DANEPROXY_FILEIO_H

#include <stddef.h>

/*
 * file_read_all - read path into a NUL-terminated malloc'd buffer of at most max bytes.
 * Returns 0, or -1 with a message (missing, unreadable, not a regular file, larger than max) in err.
 * The file is opened non-blocking and its type checked before a byte is read.
 */
int file_read_all(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen);

/*
 * file_exists - 1 when path exists, 0 when it does not (ENOENT), -1 with a message in err when that cannot be
 * told (a directory on the way that cannot be searched, ...): "cannot tell" is never taken for "missing".
 */
int file_exists(const char *path, char *err, size_t errlen);

#endif
