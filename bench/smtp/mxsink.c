/*
 * mxsink.c - a fast SMTP sink with STARTTLS: the one MX every row of bench/smtp delivers to.
 *
 * It accepts mail and throws it away, so that the measured client (daneproxy or Postfix smtp(8)) and not the MX
 * is what costs CPU. One thread per connection, blocking I/O, OpenSSL for TLS with the session cache and tickets
 * off (every STARTTLS is a full handshake, like the bench's nginx origin). It answers what a real MX answers:
 * a 220 greeting, EHLO with PIPELINING SIZE 8BITMIME ENHANCEDSTATUSCODES (and STARTTLS before TLS), 250 to
 * MAIL/RCPT, 354 to DATA and 250 after the "." line, 221 to QUIT. Every accepted message appends one line
 * "1 <bytes> <TLS version> <cipher> <key exchange group>" (or "0 <bytes>" without TLS) to the events file, which
 * the harness counts to know what was delivered and over what.
 *
 *   mxsink --listen ADDR:PORT --cert CHAIN.pem --key KEY.pem --events FILE [--name HOST] [--ready FILE]
 *
 * Not a product: no limits but a 1000-byte command line and a 1 GiB message, no AUTH, no checks of addresses.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct sink {
	SSL_CTX *ctx;
	const char *name;
	FILE *events;
	pthread_mutex_t lock;
};

struct session {
	struct sink *sink;
	int fd;
	SSL *ssl;
	char in[16384];
	size_t start, end;
};

/* sess_read - fill the input buffer from the socket or TLS; 0 at EOF or error. */
static ssize_t sess_read(struct session *s)
{
	ssize_t n;

	if (s->start > 0) {
		memmove(s->in, s->in + s->start, s->end - s->start);
		s->end -= s->start;
		s->start = 0;
	}
	if (s->end == sizeof(s->in))
		return 0;
	if (s->ssl) {
		int r = SSL_read(s->ssl, s->in + s->end, (int)(sizeof(s->in) - s->end));
		n = r > 0 ? r : 0;
	} else {
		do
			n = read(s->fd, s->in + s->end, sizeof(s->in) - s->end);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			n = 0;
	}
	s->end += (size_t)n;
	return n;
}

/* sess_line - the next CRLF- or LF-terminated line (terminator stripped) into *line; 0 at EOF. */
static int sess_line(struct session *s, char **line, size_t *len)
{
	for (;;) {
		char *nl = memchr(s->in + s->start, '\n', s->end - s->start);
		if (nl) {
			size_t l = (size_t)(nl - (s->in + s->start));
			*line = s->in + s->start;
			s->start += l + 1;
			if (l > 0 && (*line)[l - 1] == '\r')
				l--;
			*len = l;
			return 1;
		}
		if (sess_read(s) <= 0)
			return 0;
	}
}

/* sess_write - send a whole reply; -1 on error. */
static int sess_write(struct session *s, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n;
		if (s->ssl) {
			int r = SSL_write(s->ssl, p, (int)len);
			n = r > 0 ? r : -1;
		} else {
			do
				n = write(s->fd, p, len);
			while (n < 0 && errno == EINTR);
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int say(struct session *s, const char *text)
{
	return sess_write(s, text, strlen(text));
}

static int verb_is(const char *line, size_t len, const char *verb)
{
	size_t vl = strlen(verb);
	return len >= vl && strncasecmp(line, verb, vl) == 0 && (len == vl || line[vl] == ' ' || line[vl] == ':');
}

/* session_run - one SMTP connection from greeting to close. */
static void session_run(struct session *s)
{
	char buf[512];
	char *line;
	size_t len;

	snprintf(buf, sizeof(buf), "220 %s ESMTP mxsink\r\n", s->sink->name);
	if (say(s, buf) < 0)
		return;
	while (sess_line(s, &line, &len)) {
		if (verb_is(line, len, "EHLO")) {
			snprintf(buf, sizeof(buf),
				 "250-%s\r\n250-PIPELINING\r\n250-SIZE 1073741824\r\n250-8BITMIME\r\n%s"
				 "250 ENHANCEDSTATUSCODES\r\n",
				 s->sink->name, s->ssl ? "" : "250-STARTTLS\r\n");
			if (say(s, buf) < 0)
				return;
		} else if (verb_is(line, len, "HELO")) {
			snprintf(buf, sizeof(buf), "250 %s\r\n", s->sink->name);
			if (say(s, buf) < 0)
				return;
		} else if (verb_is(line, len, "STARTTLS") && !s->ssl) {
			if (s->start != s->end) {   /* pipelined after STARTTLS: what an injection looks like */
				say(s, "501 5.5.2 data after STARTTLS\r\n");
				return;
			}
			if (say(s, "220 2.0.0 Ready to start TLS\r\n") < 0)
				return;
			s->ssl = SSL_new(s->sink->ctx);
			if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1 || SSL_accept(s->ssl) != 1)
				return;
		} else if (verb_is(line, len, "MAIL")) {
			if (say(s, "250 2.1.0 Ok\r\n") < 0)
				return;
		} else if (verb_is(line, len, "RCPT")) {
			if (say(s, "250 2.1.5 Ok\r\n") < 0)
				return;
		} else if (verb_is(line, len, "DATA")) {
			size_t bytes = 0;
			int done = 0;
			if (say(s, "354 End data with <CR><LF>.<CR><LF>\r\n") < 0)
				return;
			while (sess_line(s, &line, &len)) {
				if (len == 1 && line[0] == '.') {
					done = 1;
					break;
				}
				bytes += len + 2;
				if (bytes > (1u << 30))
					return;
			}
			if (!done)
				return;
			pthread_mutex_lock(&s->sink->lock);
			if (s->ssl) {
				int group = SSL_get_negotiated_group(s->ssl);
				fprintf(s->sink->events, "1 %zu %s %s %s\n", bytes, SSL_get_version(s->ssl),
					SSL_get_cipher_name(s->ssl), group ? OBJ_nid2sn(group) : "-");
			} else {
				fprintf(s->sink->events, "0 %zu\n", bytes);
			}
			fflush(s->sink->events);
			pthread_mutex_unlock(&s->sink->lock);
			if (say(s, "250 2.0.0 Ok: queued\r\n") < 0)
				return;
		} else if (verb_is(line, len, "RSET") || verb_is(line, len, "NOOP")) {
			if (say(s, "250 2.0.0 Ok\r\n") < 0)
				return;
		} else if (verb_is(line, len, "QUIT")) {
			say(s, "221 2.0.0 Bye\r\n");
			return;
		} else {
			if (say(s, "502 5.5.2 Error: command not recognized\r\n") < 0)
				return;
		}
	}
}

static void *session_thread(void *arg)
{
	struct session *s = arg;

	session_run(s);
	if (s->ssl) {
		SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
	}
	close(s->fd);
	free(s);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: mxsink --listen ADDR:PORT --cert CHAIN.pem --key KEY.pem --events FILE "
			"[--name HOST] [--ready FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *listen_at = NULL, *cert = NULL, *key = NULL, *events = NULL, *ready = NULL;
	struct sink sink = { .name = "mx.sink.test" };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char host[64];
	const char *colon;
	int lfd, one = 1;
	pthread_attr_t attr;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--listen"))
			listen_at = argv[++i];
		else if (!strcmp(argv[i], "--cert"))
			cert = argv[++i];
		else if (!strcmp(argv[i], "--key"))
			key = argv[++i];
		else if (!strcmp(argv[i], "--events"))
			events = argv[++i];
		else if (!strcmp(argv[i], "--name"))
			sink.name = argv[++i];
		else if (!strcmp(argv[i], "--ready"))
			ready = argv[++i];
		else
			usage();
	}
	if (!listen_at || !cert || !key || !events || !(colon = strrchr(listen_at, ':')) ||
	    (size_t)(colon - listen_at) >= sizeof(host))
		usage();
	memcpy(host, listen_at, (size_t)(colon - listen_at));
	host[colon - listen_at] = '\0';
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		usage();
	sa.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
	signal(SIGPIPE, SIG_IGN);

	sink.ctx = SSL_CTX_new(TLS_server_method());
	if (!sink.ctx || SSL_CTX_use_certificate_chain_file(sink.ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sink.ctx, key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_min_proto_version(sink.ctx, TLS1_2_VERSION);
	/* every STARTTLS a full handshake: no session cache, no tickets */
	SSL_CTX_set_session_cache_mode(sink.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(sink.ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(sink.ctx, 0);
	if (!(sink.events = fopen(events, "a"))) {
		perror(events);
		return 1;
	}
	pthread_mutex_init(&sink.lock, NULL);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1024) < 0) {
		perror(listen_at);
		return 1;
	}
	if (ready) {
		FILE *f = fopen(ready, "w");
		if (f)
			fclose(f);
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (;;) {
		pthread_t t;
		struct session *s;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
				continue;
			perror("accept");
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (!(s = calloc(1, sizeof(*s)))) {
			close(fd);
			continue;
		}
		s->sink = &sink;
		s->fd = fd;
		if (pthread_create(&t, &attr, session_thread, s) != 0) {
			close(fd);
			free(s);
		}
	}
}
