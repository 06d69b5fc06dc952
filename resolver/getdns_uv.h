/*
 * getdns_uv.h - getdns event loop extension over libuv, internal to resolver/.
 *
 * Debian's getdns 1.6.0 ships a libuv extension that aborts when two TCP queries share a connection
 * (it restarts a poll handle that is closing). This adapter allocates fresh handles per scheduled event and
 * frees them only in their close callbacks, so getdns may clear and re-schedule as it likes.
 */
#ifndef DANEPROXY_GETDNS_UV_H
#define DANEPROXY_GETDNS_UV_H

#include <getdns/getdns.h>
#include <getdns/getdns_extra.h>
#include <uv.h>

struct getdns_uv {
	getdns_eventloop base;   /* first member: getdns hands this pointer back to us */
	uv_loop_t *loop;
	unsigned live_events;    /* events scheduled and not yet cleared (for tests and shutdown) */
	unsigned long stalled_connects;   /* TCP connects getdns gave up on while still in SYN_SENT (never reset) */
};

/* getdns_uv_attach - make context use loop; ext must outlive the context. */
getdns_return_t getdns_uv_attach(struct getdns_uv *ext, getdns_context *context, uv_loop_t *loop);

#endif
