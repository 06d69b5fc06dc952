/*
 * getdns_uv.c - the getdns_eventloop_vmt over libuv (its functions are adapter_*, libuv's own are uv_*).
 *
 * Each scheduled getdns event gets its own struct adapter_event holding a uv_poll_t (when there is a file
 * descriptor) and a uv_timer_t (when there is a timeout). clear() stops both, detaches from getdns's event and
 * closes the handles; the struct is freed in the last close callback. Callbacks never touch getdns's event
 * after getdns cleared it, which getdns may do from inside a callback.
 */
#include "getdns_uv.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct adapter_event {
	getdns_eventloop_event *gev;   /* NULL once cleared */
	struct getdns_uv *ext;
	int fd;
	int tcp;                       /* fd is a TCP socket */
	uv_poll_t poll;
	uv_timer_t timer;
	int has_poll;
	int has_timer;
	int pending_closes;
};

static void adapter_event_closed(uv_handle_t *h)
{
	struct adapter_event *e = h->data;

	if (--e->pending_closes == 0)
		free(e);
}

/* adapter_event_release - stop and close the handles; the struct goes with the last close callback. */
static void adapter_event_release(struct adapter_event *e)
{
	e->gev = NULL;
	e->pending_closes = 0;
	if (e->has_poll) {
		e->pending_closes++;
		uv_poll_stop(&e->poll);
		uv_close((uv_handle_t *)&e->poll, adapter_event_closed);
	}
	if (e->has_timer) {
		e->pending_closes++;
		uv_timer_stop(&e->timer);
		uv_close((uv_handle_t *)&e->timer, adapter_event_closed);
	}
	if (e->pending_closes == 0)
		free(e);
}

/*
 * ack_now - acknowledge what was read from a TCP socket at once instead of up to 40 ms later.
 *
 * The 40 ms stall of cold lookups: getdns pipelines its queries on one TCP connection, so the server often has
 * two answers to write back to back. A server that leaves Nagle on (NSD 4.6 does) holds the second, small
 * answer until the first is acknowledged, and our kernel delays that ACK (up to 40 ms on Linux) because we have
 * nothing to send: the lookup waits for the answer that waits for our ACK. A packet capture on the bed shows
 * it (tests/testbed/README.md, "the 40 ms stall"). TCP_QUICKACK sends the pending ACK now; Linux clears it
 * again on its own, so it is set after every read. TCP_NODELAY (set once per event) is the same rule for our
 * own queries, which are small writes too.
 */
static void ack_now(const struct adapter_event *e)
{
	int one = 1;

	if (e->tcp)
		setsockopt(e->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct adapter_event *e = p->data;
	getdns_eventloop_event *gev = e->gev;

	if (gev == NULL)
		return;
	/* An error on the socket is reported to getdns as readiness: its read/write fails and it cleans up. */
	if (status < 0)
		events = UV_READABLE | UV_WRITABLE;
	if ((events & UV_READABLE) && gev->read_cb != NULL) {
		gev->read_cb(gev->userarg);
		if (e->gev != gev)
			return;   /* cleared inside the callback (a re-scheduled read acks in adapter_schedule) */
		/* Still scheduled, so getdns has not closed the descriptor. */
		ack_now(e);
	}
	if ((events & UV_WRITABLE) && gev->write_cb != NULL)
		gev->write_cb(gev->userarg);
}

static void on_timer(uv_timer_t *t)
{
	struct adapter_event *e = t->data;
	getdns_eventloop_event *gev = e->gev;

	if (gev != NULL && gev->timeout_cb != NULL)
		gev->timeout_cb(gev->userarg);
}

static getdns_return_t adapter_schedule(getdns_eventloop *loop, int fd, uint64_t timeout, getdns_eventloop_event *gev)
{
	struct getdns_uv *ext = (struct getdns_uv *)loop;
	struct adapter_event *e;
	int events = 0;

	if (gev == NULL)
		return GETDNS_RETURN_INVALID_PARAMETER;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return GETDNS_RETURN_MEMORY_ERROR;
	e->ext = ext;
	e->gev = gev;
	e->fd = fd;
	if (fd >= 0 && (gev->read_cb != NULL || gev->write_cb != NULL)) {
		int type = 0, one = 1;
		socklen_t len = sizeof(type);

		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM) {
			e->tcp = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			/* getdns re-schedules after each answer it read: acknowledge it now (see ack_now). */
			if (gev->read_cb != NULL)
				ack_now(e);
		}
		if (uv_poll_init_socket(ext->loop, &e->poll, fd) < 0) {
			free(e);
			return GETDNS_RETURN_GENERIC_ERROR;
		}
		e->poll.data = e;
		e->has_poll = 1;
		events = (gev->read_cb ? UV_READABLE : 0) | (gev->write_cb ? UV_WRITABLE : 0);
		if (uv_poll_start(&e->poll, events, on_poll) < 0) {
			adapter_event_release(e);
			return GETDNS_RETURN_GENERIC_ERROR;
		}
	}
	if (gev->timeout_cb != NULL && timeout != (uint64_t)-1) {
		uv_timer_init(ext->loop, &e->timer);
		e->timer.data = e;
		e->has_timer = 1;
		uv_timer_start(&e->timer, on_timer, timeout, 0);
	}
	gev->ev = e;
	ext->live_events++;
	return GETDNS_RETURN_GOOD;
}

/*
 * connect_stalled - the TCP connect on e's socket never completed (still SYN_SENT): the upstream's backlog is
 * full or its SYNs vanish. getdns reports that as a plain error; the resolver turns it into a timeout (issue 9
 * finding 14), which is what it is. getdns clears an event before it closes the socket, so fd is still valid.
 */
static int connect_stalled(const struct adapter_event *e)
{
	struct tcp_info info;
	socklen_t len = sizeof(info);

	if (!e->tcp || e->gev == NULL || e->gev->write_cb == NULL)
		return 0;
	memset(&info, 0, sizeof(info));
	return getsockopt(e->fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && info.tcpi_state == TCP_SYN_SENT;
}

static getdns_return_t adapter_clear(getdns_eventloop *loop, getdns_eventloop_event *gev)
{
	struct getdns_uv *ext = (struct getdns_uv *)loop;
	struct adapter_event *e;

	if (gev == NULL || gev->ev == NULL)
		return GETDNS_RETURN_GOOD;
	e = gev->ev;
	if (connect_stalled(e))
		ext->stalled_connects++;
	gev->ev = NULL;
	adapter_event_release(e);
	ext->live_events--;
	return GETDNS_RETURN_GOOD;
}

static void adapter_cleanup(getdns_eventloop *loop)
{
	(void)loop;   /* the loop belongs to the application */
}

static void adapter_run_all(getdns_eventloop *loop)
{
	uv_run(((struct getdns_uv *)loop)->loop, UV_RUN_DEFAULT);
}

static void adapter_run_once(getdns_eventloop *loop, int blocking)
{
	uv_run(((struct getdns_uv *)loop)->loop, blocking ? UV_RUN_ONCE : UV_RUN_NOWAIT);
}

static getdns_eventloop_vmt adapter_vmt = {adapter_cleanup, adapter_schedule, adapter_clear, adapter_run_all,
					   adapter_run_once};

getdns_return_t getdns_uv_attach(struct getdns_uv *ext, getdns_context *context, uv_loop_t *loop)
{
	ext->base.vmt = &adapter_vmt;
	ext->loop = loop;
	ext->live_events = 0;
	return getdns_context_set_eventloop(context, &ext->base);
}
