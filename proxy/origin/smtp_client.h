/*
 * smtp_client.h - the client side of one SMTP conversation (RFC 5321), without I/O: shared by the STARTTLS route
 * (upstream.c) and the outbound mail module (smtp_out.c).
 *
 * The owner feeds the server's bytes in (smtp_client_feed) and gets each reply back through the callback of the
 * command it answers, in order; commands go out through the owner's write function. Pipelining (RFC 2920) is
 * the engine's business: with smtp_client_set_pipelining(c, 1) MAIL, RCPT and RSET are written at once and a
 * group ends with any other command; without it every command waits for the previous reply. Message content
 * (after a 354) goes through smtp_client_body, which refuses what could end or split the message anywhere but at
 * its end (a bare CR or LF, a line that is a lone "."), so no SMTP smuggling passes through it.
 * A server that sends a reply nobody asked for, or a malformed one, ends the conversation with an error.
 */
#ifndef DANEPROXY_SMTP_CLIENT_H
#define DANEPROXY_SMTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "smtp_reply.h"

#define SMTP_CLIENT_MAX_PENDING 128   /* replies awaited at once (sent or held commands) */
#define SMTP_CLIENT_MAX_LINE 512      /* a command line with its CRLF (RFC 5321 4.5.3.1.4) */

/* Why a conversation failed: constants compared by pointer. A malformed reply gives smtp_reply_err_* instead. */
extern const char smtp_client_err_unexpected[];   /* a reply (or bytes) while no reply was awaited */
extern const char smtp_client_err_write[];        /* the owner's write function failed */
extern const char smtp_client_err_line[];         /* a command line too long or with CR, LF or NUL in it */
extern const char smtp_client_err_busy[];         /* too many replies awaited, or a command during DATA */
extern const char smtp_client_err_bare_newline[]; /* message content with a CR or LF not in a CRLF pair */
extern const char smtp_client_err_dot_line[];     /* message content with a line that is a lone "." */
extern const char smtp_client_err_state[];        /* content outside DATA, or DATA's end without content begun */

struct smtp_client;

/* smtp_client_write_fn - send bytes to the server; 0, or -1 when the connection cannot take them. */
typedef int (*smtp_client_write_fn)(void *io, const char *data, size_t len);

/*
 * smtp_client_reply_fn - the reply to one command (or the awaited greeting): r and the reply's bytes at text
 * (r->len of them, valid during the call). smtp_client_buffered(c) then says how many bytes the server sent
 * after it. The callback may send commands, stop feeding (smtp_client_halt) or free the client.
 */
typedef void (*smtp_client_reply_fn)(struct smtp_client *c, const struct smtp_reply *r, const char *text, void *arg);

/* smtp_client_new - an engine writing through write(io, ...); NULL when out of memory. */
struct smtp_client *smtp_client_new(smtp_client_write_fn write, void *io);
/* smtp_client_free - safe inside a reply callback (the feed in progress stops). */
void smtp_client_free(struct smtp_client *c);

/* smtp_client_set_pipelining - the server announced PIPELINING (or, 0, the conversation became a new one). */
void smtp_client_set_pipelining(struct smtp_client *c, int on);

/* smtp_client_expect - await one reply without a command: the greeting, or the reply to what the owner wrote
 * itself. 0, or -1 with smtp_client_error(c). */
int smtp_client_expect(struct smtp_client *c, smtp_client_reply_fn fn, void *arg);

/* smtp_client_command - send line (no CRLF; at most SMTP_CLIENT_MAX_LINE - 2 octets, no CR/LF/NUL), await its
 * reply. Written at once, or held until the replies before it are in when pipelining does not allow it yet. */
int smtp_client_command(struct smtp_client *c, const char *line, smtp_client_reply_fn fn, void *arg);

/*
 * Message content, after a 354 to DATA: smtp_client_body writes it as given, which must already be
 * dot-stuffed (RFC 5321 4.5.2) with CRLF line endings; smtp_client_body_end writes the end of data (CRLF first
 * when the content did not end with one) and awaits the reply. Both return 0, or -1 with smtp_client_error(c)
 * (nothing of a refused piece is written).
 */
int smtp_client_body(struct smtp_client *c, const char *data, size_t len);
int smtp_client_body_end(struct smtp_client *c, smtp_client_reply_fn fn, void *arg);
/* smtp_client_body_bytes - content octets written since the last 354 (after dot-stuffing, as on the wire). */
uint64_t smtp_client_body_bytes(const struct smtp_client *c);

/* smtp_client_feed - bytes from the server: replies are handed to their callbacks. 0, or -1 with
 * smtp_client_error(c) (the conversation is over; no callback was called for the offending bytes). */
int smtp_client_feed(struct smtp_client *c, const char *data, size_t len);

/* smtp_client_halt - stop handing out replies (inside a callback: the rest stays buffered); feed refuses more. */
void smtp_client_halt(struct smtp_client *c);

/* smtp_client_buffered - bytes received and not part of any reply handed out. */
size_t smtp_client_buffered(const struct smtp_client *c);
/* smtp_client_awaiting - replies still awaited (commands sent or held). */
size_t smtp_client_awaiting(const struct smtp_client *c);
/* smtp_client_error - why the conversation failed (a smtp_client_err_* or smtp_reply_err_* constant), or NULL. */
const char *smtp_client_error(const struct smtp_client *c);

#endif
