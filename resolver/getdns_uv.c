/*
 * getdns_uv.c - the getdns_eventloop_vmt over libuv.
 *
 * Each scheduled getdns event gets its own struct uv_event holding a uv_poll_t (when there is a file
 * descriptor) and a uv_timer_t (when there is a timeout). clear() stops both, detaches from getdns's event and
 * closes the handles; the struct is freed in the last close callback. Callbacks never touch getdns's event
 * after getdns cleared it, which getdns may do from inside a callback.
 */
#include "getdns_uv.h"

#include <stdlib.h>

struct uv_event {
	getdns_eventloop_event *gev;   /* NULL once cleared */
	struct getdns_uv *ext;
	uv_poll_t poll;
	uv_timer_t timer;
	int has_poll;
	int has_timer;
	int pending_closes;
};

static void uv_event_closed(uv_handle_t *h)
{
	struct uv_event *e = h->data;

	if (--e->pending_closes == 0)
		free(e);
}

/* uv_event_release - stop and close the handles; the struct goes with the last close callback. */
static void uv_event_release(struct uv_event *e)
{
	e->gev = NULL;
	e->pending_closes = 0;
	if (e->has_poll) {
		e->pending_closes++;
		uv_poll_stop(&e->poll);
		uv_close((uv_handle_t *)&e->poll, uv_event_closed);
	}
	if (e->has_timer) {
		e->pending_closes++;
		uv_timer_stop(&e->timer);
		uv_close((uv_handle_t *)&e->timer, uv_event_closed);
	}
	if (e->pending_closes == 0)
		free(e);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct uv_event *e = p->data;
	getdns_eventloop_event *gev = e->gev;

	if (gev == NULL)
		return;
	/* An error on the socket is reported to getdns as readiness: its read/write fails and it cleans up. */
	if (status < 0)
		events = UV_READABLE | UV_WRITABLE;
	if ((events & UV_READABLE) && gev->read_cb != NULL) {
		gev->read_cb(gev->userarg);
		if (e->gev != gev)
			return;   /* cleared inside the callback */
	}
	if ((events & UV_WRITABLE) && gev->write_cb != NULL)
		gev->write_cb(gev->userarg);
}

static void on_timer(uv_timer_t *t)
{
	struct uv_event *e = t->data;
	getdns_eventloop_event *gev = e->gev;

	if (gev != NULL && gev->timeout_cb != NULL)
		gev->timeout_cb(gev->userarg);
}

static getdns_return_t uv_schedule(getdns_eventloop *loop, int fd, uint64_t timeout, getdns_eventloop_event *gev)
{
	struct getdns_uv *ext = (struct getdns_uv *)loop;
	struct uv_event *e;
	int events = 0;

	if (gev == NULL)
		return GETDNS_RETURN_INVALID_PARAMETER;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return GETDNS_RETURN_MEMORY_ERROR;
	e->ext = ext;
	e->gev = gev;
	if (fd >= 0 && (gev->read_cb != NULL || gev->write_cb != NULL)) {
		if (uv_poll_init_socket(ext->loop, &e->poll, fd) < 0) {
			free(e);
			return GETDNS_RETURN_GENERIC_ERROR;
		}
		e->poll.data = e;
		e->has_poll = 1;
		events = (gev->read_cb ? UV_READABLE : 0) | (gev->write_cb ? UV_WRITABLE : 0);
		if (uv_poll_start(&e->poll, events, on_poll) < 0) {
			uv_event_release(e);
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

static getdns_return_t uv_clear(getdns_eventloop *loop, getdns_eventloop_event *gev)
{
	struct getdns_uv *ext = (struct getdns_uv *)loop;
	struct uv_event *e;

	if (gev == NULL || gev->ev == NULL)
		return GETDNS_RETURN_GOOD;
	e = gev->ev;
	gev->ev = NULL;
	uv_event_release(e);
	ext->live_events--;
	return GETDNS_RETURN_GOOD;
}

static void uv_cleanup(getdns_eventloop *loop)
{
	(void)loop;   /* the loop belongs to the application */
}

static void uv_run_all(getdns_eventloop *loop)
{
	uv_run(((struct getdns_uv *)loop)->loop, UV_RUN_DEFAULT);
}

static void uv_run_once(getdns_eventloop *loop, int blocking)
{
	uv_run(((struct getdns_uv *)loop)->loop, blocking ? UV_RUN_ONCE : UV_RUN_NOWAIT);
}

static getdns_eventloop_vmt uv_vmt = {uv_cleanup, uv_schedule, uv_clear, uv_run_all, uv_run_once};

getdns_return_t getdns_uv_attach(struct getdns_uv *ext, getdns_context *context, uv_loop_t *loop)
{
	ext->base.vmt = &uv_vmt;
	ext->loop = loop;
	ext->live_events = 0;
	return getdns_context_set_eventloop(context, &ext->base);
}
