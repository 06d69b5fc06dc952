/*
 * json.h - writing JSON strings safely (logs, --json output). Writing only: daneproxy never parses JSON.
 */
#ifndef DANEPROXY_JSON_H
#define DANEPROXY_JSON_H

#include <stdio.h>

/* json_put_string - write s as a quoted JSON string with every control character escaped; NULL writes null. */
void json_put_string(FILE *out, const char *s);

#endif
