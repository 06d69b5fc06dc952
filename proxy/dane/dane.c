/*
 * dane.c - the TLSA matching engine: record usability, digest agility, DANE-EE, DANE-TA chain building,
 * PKIX-TA/EE over a local trust store, and RFC 6125 name checks. shared/DANE.md is the specification;
 * section numbers in comments refer to it.
 *
 * wolfSSL parses certificates, hashes, and verifies signatures; this file decides. Name matching is ours:
 * wolfSSL_X509_check_host() accepts partial-label wildcards ("f*.example.com") and its
 * NO_PARTIAL_WILDCARDS flag rejects every name in 5.5.4, so neither mode implements RFC 6125 section 6.4.3.
 */
#include "dane.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/x509v3.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/asn.h>   /* DecodedCert: cert_parse_light */

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char dane_ok_dane_ee[] = "DANE-EE record matched the server certificate";
const char dane_ok_dane_ta[] = "DANE-TA record matched a trust anchor in the chain";
const char dane_ok_pkix_ta[] = "PKIX-TA record matched a CA of a PKIX-valid chain";
const char dane_ok_pkix_ee[] = "PKIX-EE record matched the certificate of a PKIX-valid chain";
const char dane_ok_pkix[] = "certificate chain is PKIX-valid";
const char dane_err_empty_chain[] = "server presented no certificate";
const char dane_err_no_usable[] = "no usable TLSA record";
const char dane_err_no_match[] = "TLSA mismatch: no usable TLSA record matched the certificate chain";
const char dane_err_name_mismatch[] = "certificate name does not match the host";
const char dane_err_expired[] = "certificate expired";
const char dane_err_not_yet_valid[] = "certificate not yet valid";
const char dane_err_not_ca[] = "issuer is not a CA or path length exceeded";
const char dane_err_bad_usage[] = "key usage does not allow TLS server authentication";
const char dane_err_bad_signature[] = "certificate signature does not verify";
const char dane_err_pkix_untrusted[] = "no path to a trusted PKIX root";
const char dane_err_pkix_no_store[] = "PKIX usage needs a trust store and none is configured";
const char dane_err_pkix_no_match[] = "chain is PKIX-valid but no PKIX-TA/PKIX-EE record matched";
const char dane_err_internal[] = "internal error";

/* A parsed certificate with everything the rules look at, extracted once. */
struct dane_cert {
	uint8_t *der;
	size_t der_len;
	WOLFSSL_X509 *x509;   /* built by cert_load, NULL until then */
	int loaded;           /* cert_load: 0 not yet, 1 done, -1 failed; the fields below are valid when 1 */
	uint8_t *spki;
	size_t spki_len;
	time_t not_before;
	time_t not_after;
	int is_ca;
	int pathlen;        /* -1 when unconstrained */
	int has_ku;
	unsigned ku;
	int has_eku;
	unsigned eku;
	int self_issued;    /* subject == issuer */
};

struct dane_chain {
	struct dane_cert *certs[DANE_MAX_CHAIN];
	size_t n;
};

struct dane_store {
	struct dane_cert **certs;
	size_t n;
	size_t cap;
};

#define DANE_MAX_STORE 4096

/* Where a certificate in a built path came from (section 2: it limits which records it may match). */
enum cert_origin { ORIGIN_PEER, ORIGIN_TLSA, ORIGIN_STORE };

struct path_node {
	struct dane_cert *cert;
	enum cert_origin origin;
	int tlsa_index;   /* for ORIGIN_TLSA: the record that supplied it */
};

/* Per-record state for one verification. */
struct rec_state {
	const struct dane_tlsa *rec;
	int usable;
	int compared;                 /* usable and not displaced by a stronger digest in its group */
	struct dane_cert *full_cert;  /* mtype 0 selector 0: the parsed certificate (usages 0/2 add issuers) */
	WOLFSSL_EVP_PKEY *full_key;   /* mtype 0 selector 1: the parsed key */
};

/* A failure worth reporting; one where a record matched beats one where none did. */
struct failure {
	const char *reason;
	int matched;
	int depth;
	int record;
	char detail[256];
};

struct vctx {
	const struct dane_chain *chain;
	size_t n_chain;   /* its certificates the path rules may use (chain_load) */
	const struct dane_options *opts;
	const char *const *names;
	size_t n_names;
	time_t now;
	struct rec_state *rs;
	size_t n_rs;
	struct failure fail;
	int saw_bad_signature;
	int edges;        /* candidate issuer signatures checked so far (DANE_MAX_EDGES) */
	int gave_up;      /* the budget ran out: no search goes on */
};

static const uint8_t default_digest_order[] = {DANE_MTYPE_SHA512, DANE_MTYPE_SHA256, 0};

/* ---------- certificates ---------- */

/* asn1_time_to_time_t - convert an ASN1_TIME to UTC seconds; -1 on failure. */
static int asn1_time_to_time_t(const WOLFSSL_ASN1_TIME *t, time_t *out)
{
	struct tm tm;

	if (t == NULL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if (wolfSSL_ASN1_TIME_to_tm(t, &tm) != WOLFSSL_SUCCESS)
		return -1;
	*out = timegm(&tm);
	return 0;
}

/* cert_free - release one parsed certificate. */
static void cert_free(struct dane_cert *c)
{
	if (c == NULL)
		return;
	wolfSSL_X509_free(c->x509);
	free(c->der);
	free(c->spki);
	free(c);
}

/* der_header - the header length and content length of the DER TLV at the start of p (single-byte tag, length
 * in at most 3 bytes); -1 when it does not fit in len. */
static int der_header(const uint8_t *p, size_t len, size_t *header, size_t *content)
{
	size_t i, n;

	if (len < 2 || (p[0] & 0x1f) == 0x1f)
		return -1;
	*header = 2;
	*content = p[1];
	if (p[1] >= 0x80) {
		n = p[1] & 0x7f;
		if (n == 0 || n > 3 || len < 2 + n)
			return -1;
		for (*content = 0, i = 0; i < n; i++)
			*content = *content << 8 | p[2 + i];
		*header += n;
	}
	return *header + *content <= len ? 0 : -1;
}

/* der_sequence_len - total length (header + content) of the DER SEQUENCE at the start of p, or 0 when p does not
 * start with one that fits in len. Only the outer framing: wolfSSL parses the contents. */
static size_t der_sequence_len(const uint8_t *p, size_t len)
{
	size_t header, content;

	if (len < 1 || p[0] != 0x30 || der_header(p, len, &header, &content) < 0)
		return 0;
	return header + content;
}

/*
 * spki_in_cert - where the SubjectPublicKeyInfo is in a certificate's DER, as it was signed (RFC 5280 4.1:
 * the TBSCertificate's [0] version, serial, signature, issuer, validity and subject come before it). The same
 * bytes wolfSSL_X509_get_pubkey_buffer copies, found without building an X509 object.
 */
static int spki_in_cert(const uint8_t *der, size_t len, size_t *off, size_t *spki_len)
{
	size_t pos, end, header, content;
	int i;

	if (der_header(der, len, &header, &content) < 0)
		return -1;
	pos = header;   /* into Certificate: the TBSCertificate SEQUENCE */
	if (der[pos] != 0x30 || der_header(der + pos, len - pos, &header, &content) < 0)
		return -1;
	end = pos + header + content;
	pos += header;
	for (i = 0; i < 6 && pos < end; i++) {
		if (der_header(der + pos, end - pos, &header, &content) < 0)
			return -1;
		if (i == 0 && der[pos] != 0xa0)
			i++;   /* no explicit version: v1 */
		pos += header + content;
	}
	if (i < 6 || pos >= end || der[pos] != 0x30 || der_header(der + pos, end - pos, &header, &content) < 0)
		return -1;
	*off = pos;
	*spki_len = header + content;
	return 0;
}

/*
 * cert_parse_light - check exactly one DER certificate as wolfSSL parses it and keep its DER and SPKI: all that
 * matching a record against it needs. wolfCrypt's parser takes ~1.5 us where wolfSSL_d2i_X509 takes 17-28 us and
 * seeds a random generator for the EVP_PKEY it builds; the rest (cert_load) is done only for the certificates a
 * rule needs more of: a DANE-EE match never does.
 */
static struct dane_cert *cert_parse_light(const uint8_t *der, size_t len, char *err, size_t errlen)
{
	struct dane_cert *c = NULL;
	DecodedCert *dc = NULL;
	size_t outer, off, spki_len;
	int parsed;

	if (len == 0 || len > 65535) {
		snprintf(err, errlen, "certificate of %zu bytes is %s", len, len == 0 ? "empty" : "too large");
		return NULL;
	}
	outer = der_sequence_len(der, len);
	if (outer == 0) {
		snprintf(err, errlen, "not a DER X.509 certificate wolfSSL can parse");
		return NULL;
	}
	if (outer != len) {
		snprintf(err, errlen, "%zu trailing bytes after the certificate", len - outer);
		return NULL;
	}
	dc = malloc(sizeof(*dc));   /* 2.5 KB: not on the stack of a verify callback */
	c = calloc(1, sizeof(*c));
	if (dc == NULL || c == NULL)
		goto oom;
	wc_InitDecodedCert(dc, der, (word32)len, NULL);
	parsed = wc_ParseCert(dc, CERT_TYPE, NO_VERIFY, NULL);
	wc_FreeDecodedCert(dc);
	free(dc);
	dc = NULL;
	if (parsed != 0 || spki_in_cert(der, len, &off, &spki_len) < 0) {
		snprintf(err, errlen, "not a DER X.509 certificate wolfSSL can parse");
		goto fail;
	}
	c->der = malloc(len);
	c->spki = malloc(spki_len);
	if (c->der == NULL || c->spki == NULL)
		goto oom;
	memcpy(c->der, der, len);
	c->der_len = len;
	memcpy(c->spki, der + off, spki_len);
	c->spki_len = spki_len;
	return c;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	free(dc);
	cert_free(c);
	return NULL;
}

/*
 * cert_load - the X509 object and every attribute the chain rules read (dates, CA and path length, key usages,
 * self-issued), once; 0, or -1 with err when wolfSSL cannot build the object (the certificate is then unusable).
 */
static int cert_load(struct dane_cert *c, char *err, size_t errlen)
{
	const unsigned char *p = c->der;
	unsigned flags;

	if (c->loaded)
		return c->loaded > 0 ? 0 : -1;
	c->loaded = -1;
	c->x509 = wolfSSL_d2i_X509(NULL, &p, (int)c->der_len);
	if (c->x509 == NULL || (size_t)(p - c->der) != c->der_len) {
		snprintf(err, errlen, "not a DER X.509 certificate wolfSSL can parse");
		return -1;
	}
	if (asn1_time_to_time_t(wolfSSL_X509_get_notBefore(c->x509), &c->not_before) < 0 ||
	    asn1_time_to_time_t(wolfSSL_X509_get_notAfter(c->x509), &c->not_after) < 0) {
		snprintf(err, errlen, "certificate has unreadable validity dates");
		return -1;
	}
	c->is_ca = wolfSSL_X509_get_isCA(c->x509) == 1;
	c->pathlen = wolfSSL_X509_get_isSet_pathLength(c->x509) ? (int)wolfSSL_X509_get_pathLength(c->x509) : -1;
	flags = wolfSSL_X509_get_extension_flags(c->x509);
	c->has_ku = (flags & EXFLAG_KUSAGE) != 0;
	c->ku = c->has_ku ? wolfSSL_X509_get_keyUsage(c->x509) : 0;
	c->has_eku = (flags & EXFLAG_XKUSAGE) != 0;
	c->eku = c->has_eku ? wolfSSL_X509_get_extended_key_usage(c->x509) : 0;
	c->self_issued = wolfSSL_X509_NAME_cmp(wolfSSL_X509_get_subject_name(c->x509),
					       wolfSSL_X509_get_issuer_name(c->x509)) == 0;
	c->loaded = 1;
	return 0;
}

/* cert_parse - a certificate with everything loaded (trust anchors, certificates in TLSA records). */
static struct dane_cert *cert_parse(const uint8_t *der, size_t len, char *err, size_t errlen)
{
	struct dane_cert *c = cert_parse_light(der, len, err, errlen);

	if (c != NULL && cert_load(c, err, errlen) < 0) {
		cert_free(c);
		return NULL;
	}
	return c;
}

/*
 * chain_load - load the chain's certificates for the rules beyond DANE-EE: how many of them, from the leaf up,
 * could be. The chain ends for those rules before the first one wolfSSL cannot build an object for, as it would
 * have ended had that one been parsed whole when it was added. (Loading fills a cache in each certificate; the
 * chain itself is unchanged.)
 */
static size_t chain_load(const struct dane_chain *chain)
{
	char err[160];
	size_t i;

	for (i = 0; i < chain->n; i++)
		if (cert_load(chain->certs[i], err, sizeof(err)) < 0)
			break;
	return i;
}

/* ---------- printable text ---------- */

/* utf8_len - length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no surrogates), or 0. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		lo = p[0] == 0xe0 ? 0xa0 : 0x80;
		hi = p[0] == 0xed ? 0x9f : 0xbf;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		lo = p[0] == 0xf0 ? 0x90 : 0x80;
		hi = p[0] == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

char *dane_printable(const char *in, size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, o = 0, n;

	if (outlen == 0)
		return out;
	while (i < len) {
		n = p[i] >= 0x80 ? utf8_len(p + i, len - i) : (size_t)(p[i] >= 0x20 && p[i] < 0x7f);
		if (n == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)
			n = 0;   /* C1 controls, U+0080 .. U+009F: some terminals obey them */
		if (n > 0) {
			if (o + n >= outlen)
				break;
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		} else {
			if (o + 4 >= outlen)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[p[i] >> 4];
			out[o++] = hex[p[i] & 0xf];
			i++;
		}
	}
	out[o] = '\0';
	return out;
}

/* name_printable - an X.509 name as a printable one-line string for explanations. */
static void name_printable(WOLFSSL_X509_NAME *name, char *buf, size_t len)
{
	char raw[256];

	if (wolfSSL_X509_NAME_oneline(name, raw, (int)sizeof(raw)) == NULL)
		snprintf(buf, len, "(unprintable name)");
	else
		dane_printable(raw, strlen(raw), buf, len);
}

/* cert_subject - the subject as a printable one-line string for explanations. */
static void cert_subject(const struct dane_cert *c, char *buf, size_t len)
{
	name_printable(wolfSSL_X509_get_subject_name(c->x509), buf, len);
}

/* cert_signed_by_key - 1 when c's signature verifies under key. */
static int cert_signed_by_key(const struct dane_cert *c, WOLFSSL_EVP_PKEY *key)
{
	return key != NULL && wolfSSL_X509_verify(c->x509, key) == WOLFSSL_SUCCESS;
}

/* cert_signed_by - 1 when child's signature verifies under issuer's public key. */
static int cert_signed_by(const struct dane_cert *child, const struct dane_cert *issuer)
{
	WOLFSSL_EVP_PKEY *key = wolfSSL_X509_get_pubkey(issuer->x509);
	int ok = cert_signed_by_key(child, key);

	wolfSSL_EVP_PKEY_free(key);
	return ok;
}

/* cert_names_issuer - 1 when candidate's subject is child's issuer and the key identifiers do not contradict it. */
static int cert_names_issuer(const struct dane_cert *child, const struct dane_cert *cand)
{
	unsigned char akid[64], skid[64];
	int akid_len = sizeof(akid), skid_len = sizeof(skid);

	if (wolfSSL_X509_NAME_cmp(wolfSSL_X509_get_issuer_name(child->x509),
				  wolfSSL_X509_get_subject_name(cand->x509)) != 0)
		return 0;
	if (wolfSSL_X509_get_authorityKeyID(child->x509, akid, &akid_len) != NULL &&
	    wolfSSL_X509_get_subjectKeyID(cand->x509, skid, &skid_len) != NULL && akid_len > 0 && skid_len > 0 &&
	    (akid_len != skid_len || memcmp(akid, skid, (size_t)akid_len) != 0))
		return 0;
	return 1;
}

/* ---------- chains and stores ---------- */

struct dane_chain *dane_chain_new(void)
{
	return calloc(1, sizeof(struct dane_chain));
}

void dane_chain_free(struct dane_chain *chain)
{
	size_t i;

	if (chain == NULL)
		return;
	for (i = 0; i < chain->n; i++)
		cert_free(chain->certs[i]);
	free(chain);
}

int dane_chain_add_der(struct dane_chain *chain, const uint8_t *der, size_t len, char *err, size_t errlen)
{
	struct dane_cert *c;
	char why[160];

	if (chain->n >= DANE_MAX_CHAIN) {
		snprintf(err, errlen, "more than %d certificates in the chain", DANE_MAX_CHAIN);
		return -1;
	}
	c = cert_parse_light(der, len, why, sizeof(why));
	if (c == NULL) {
		snprintf(err, errlen, "certificate %zu: %s", chain->n, why);
		return -1;
	}
	chain->certs[chain->n++] = c;
	return 0;
}

size_t dane_chain_len(const struct dane_chain *chain)
{
	return chain->n;
}

const uint8_t *dane_chain_der(const struct dane_chain *chain, size_t i, size_t *len)
{
	if (i >= chain->n)
		return NULL;
	*len = chain->certs[i]->der_len;
	return chain->certs[i]->der;
}

const uint8_t *dane_chain_spki(const struct dane_chain *chain, size_t i, size_t *len)
{
	if (i >= chain->n)
		return NULL;
	*len = chain->certs[i]->spki_len;
	return chain->certs[i]->spki;
}

static const char pem_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_end[] = "-----END CERTIFICATE-----";

/* mem_find - memmem over (p, end) for a NUL-terminated needle. */
static const char *mem_find(const char *p, const char *end, const char *needle)
{
	size_t n = strlen(needle);

	for (; (size_t)(end - p) >= n; p++)
		if (*p == needle[0] && memcmp(p, needle, n) == 0)
			return p;
	return NULL;
}

typedef int (*pem_sink)(void *arg, const uint8_t *der, size_t len, char *err, size_t errlen);

/*
 * pem_each_cert - call sink with the DER of every CERTIFICATE block in (buf, len), or with the whole buffer when it
 * is a bare DER certificate. Returns the number of blocks, or -1 with err set (truncated block, bad base64, none).
 */
static int pem_each_cert(const char *buf, size_t len, pem_sink sink, void *arg, char *err, size_t errlen)
{
	const char *p = buf, *end = buf + len, *b, *e;
	uint8_t *der = NULL;
	int count = 0, der_len;
	char why[200];

	if (len == 0) {
		snprintf(err, errlen, "empty input: no certificate");
		return -1;
	}
	if ((unsigned char)buf[0] == 0x30 && mem_find(buf, end, "-----BEGIN") == NULL)
		return sink(arg, (const uint8_t *)buf, len, err, errlen) < 0 ? -1 : 1;
	der = malloc(len);
	if (der == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while ((b = mem_find(p, end, pem_begin)) != NULL) {
		e = mem_find(b, end, pem_end);
		if (e == NULL) {
			snprintf(err, errlen, "truncated PEM: certificate block %d has no END line", count + 1);
			goto fail;
		}
		e += sizeof(pem_end) - 1;
		der_len = wc_CertPemToDer((const unsigned char *)b, (int)(e - b), der, (int)len, CERT_TYPE);
		if (der_len <= 0) {
			snprintf(err, errlen, "PEM certificate block %d is not valid base64 DER", count + 1);
			goto fail;
		}
		if (sink(arg, der, (size_t)der_len, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s", why);
			goto fail;
		}
		count++;
		p = e;
	}
	if (count == 0) {
		snprintf(err, errlen, "no PEM certificate found (expected a -----BEGIN CERTIFICATE----- block)");
		goto fail;
	}
	free(der);
	return count;
fail:
	free(der);
	return -1;
}

static int chain_sink(void *arg, const uint8_t *der, size_t len, char *err, size_t errlen)
{
	return dane_chain_add_der(arg, der, len, err, errlen);
}

int dane_chain_load_pem(struct dane_chain *chain, const char *buf, size_t len, char *err, size_t errlen)
{
	return pem_each_cert(buf, len, chain_sink, chain, err, errlen) < 0 ? -1 : 0;
}

struct dane_store *dane_store_new(void)
{
	return calloc(1, sizeof(struct dane_store));
}

void dane_store_free(struct dane_store *store)
{
	size_t i;

	if (store == NULL)
		return;
	for (i = 0; i < store->n; i++)
		cert_free(store->certs[i]);
	free(store->certs);
	free(store);
}

/* store_sink - add one anchor. Certificates wolfSSL cannot parse are skipped: system bundles hold a few. */
static int store_sink(void *arg, const uint8_t *der, size_t len, char *err, size_t errlen)
{
	struct dane_store *store = arg;
	struct dane_cert *c, **grown;
	char why[160];

	if (store->n >= DANE_MAX_STORE) {
		snprintf(err, errlen, "more than %d trust anchors", DANE_MAX_STORE);
		return -1;
	}
	c = cert_parse(der, len, why, sizeof(why));
	if (c == NULL)
		return 0;
	if (store->n == store->cap) {
		size_t cap = store->cap ? store->cap * 2 : 64;
		grown = realloc(store->certs, cap * sizeof(*grown));
		if (grown == NULL) {
			cert_free(c);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		store->certs = grown;
		store->cap = cap;
	}
	store->certs[store->n++] = c;
	return 0;
}

int dane_store_add_pem(struct dane_store *store, const char *buf, size_t len, char *err, size_t errlen)
{
	size_t before = store->n;

	if (pem_each_cert(buf, len, store_sink, store, err, errlen) < 0)
		return -1;
	if (store->n == before) {
		snprintf(err, errlen, "no certificate in the trust store input could be parsed");
		return -1;
	}
	return (int)(store->n - before);
}

size_t dane_store_count(const struct dane_store *store)
{
	return store->n;
}

/* store_contains - 1 when the store holds exactly this certificate. */
static int store_contains(const struct dane_store *store, const struct dane_cert *c)
{
	size_t i;

	for (i = 0; store != NULL && i < store->n; i++)
		if (store->certs[i]->der_len == c->der_len && memcmp(store->certs[i]->der, c->der, c->der_len) == 0)
			return 1;
	return 0;
}

/* ---------- names (section 4) ---------- */

/* label_count - number of dot-separated labels in (s, len). */
static size_t label_count(const char *s, size_t len)
{
	size_t i, n = len ? 1 : 0;

	for (i = 0; i < len; i++)
		if (s[i] == '.')
			n++;
	return n;
}

int dane_name_match(const char *presented, size_t plen, const char *reference)
{
	size_t rlen = strlen(reference), i;
	const char *dot;

	/* Trailing dots are the absolute form of the same name. */
	if (rlen > 0 && reference[rlen - 1] == '.')
		rlen--;
	if (plen > 0 && presented[plen - 1] == '.')
		plen--;
	if (plen == 0 || rlen == 0)
		return 0;
	for (i = 0; i < plen; i++)
		if (presented[i] == '\0')
			return 0;   /* embedded NUL: a classic spoofing trick */
	if (plen >= 2 && presented[0] == '*' && presented[1] == '.') {
		/* A wildcard is the whole left-most label and covers one label, above at least two labels. */
		if (memchr(presented + 1, '*', plen - 1) != NULL || label_count(presented + 2, plen - 2) < 2)
			return 0;
		dot = memchr(reference, '.', rlen);
		if (dot == NULL || dot == reference)
			return 0;
		return (size_t)(reference + rlen - dot) == plen - 1 &&
		       strncasecmp(dot, presented + 1, plen - 1) == 0;
	}
	if (memchr(presented, '*', plen) != NULL)
		return 0;   /* partial-label or interior wildcards never match (RFC 7671 section 7) */
	return plen == rlen && strncasecmp(presented, reference, plen) == 0;
}

/* ip_literal - parse reference as an IPv4/IPv6 literal into out; returns its length or 0. */
static size_t ip_literal(const char *reference, uint8_t out[16])
{
	if (inet_pton(AF_INET, reference, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, reference, out) == 1)
		return 16;
	return 0;
}

/* cert_matches_names - 1 when the leaf is issued to any of the reference names (SAN DNS/IP, else CN). */
static int cert_matches_names(const struct dane_cert *c, const char *const *names, size_t n_names)
{
	WOLFSSL_STACK *sans;
	int i, n, saw_dns = 0, matched = 0;
	size_t k;
	char cn[256];
	uint8_t ip[16];
	size_t ip_len;

	sans = wolfSSL_X509_get_ext_d2i(c->x509, NID_subject_alt_name, NULL, NULL);
	n = sans ? wolfSSL_sk_GENERAL_NAME_num(sans) : 0;
	for (i = 0; i < n && !matched; i++) {
		WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(sans, i);
		if (gn == NULL)
			continue;
		if (gn->type == GEN_DNS && gn->d.dNSName != NULL) {
			const char *s = (const char *)wolfSSL_ASN1_STRING_get0_data(gn->d.dNSName);
			int len = wolfSSL_ASN1_STRING_length(gn->d.dNSName);
			saw_dns = 1;
			for (k = 0; s != NULL && len > 0 && k < n_names && !matched; k++)
				matched = ip_literal(names[k], ip) == 0 && dane_name_match(s, (size_t)len, names[k]);
		} else if (gn->type == GEN_IPADD && gn->d.iPAddress != NULL) {
			const uint8_t *a = wolfSSL_ASN1_STRING_get0_data(gn->d.iPAddress);
			int len = wolfSSL_ASN1_STRING_length(gn->d.iPAddress);
			saw_dns = 1;
			for (k = 0; a != NULL && k < n_names && !matched; k++) {
				ip_len = ip_literal(names[k], ip);
				matched = ip_len > 0 && (size_t)len == ip_len && memcmp(a, ip, ip_len) == 0;
			}
		}
	}
	if (sans != NULL)
		wolfSSL_GENERAL_NAMES_free(sans);
	if (matched || saw_dns)
		return matched;
	/* No DNS or IP SAN at all: fall back to the subject common name (RFC 6125 section 6.4.4). */
	n = wolfSSL_X509_NAME_get_text_by_NID(wolfSSL_X509_get_subject_name(c->x509), NID_commonName, cn, sizeof(cn));
	for (k = 0; n > 0 && k < n_names && !matched; k++)
		matched = ip_literal(names[k], ip) == 0 && dane_name_match(cn, strlen(cn), names[k]);
	return matched;
}

/* ---------- records (section 1) ---------- */

/* digest_rank - position of mtype in the preference order (0 = strongest), or -1 when disabled. */
static int digest_rank(const struct dane_options *opts, uint8_t mtype)
{
	const uint8_t *order = opts->digest_order[0] ? opts->digest_order : default_digest_order;
	int i;

	for (i = 0; i < 4 && order[i] != 0; i++)
		if (order[i] == mtype)
			return i;
	return -1;
}

int dane_record_usable(const struct dane_tlsa *rec, const struct dane_options *opts, const char **why)
{
	const char *reason = NULL;

	if (rec->usage > DANE_USAGE_DANE_EE)
		reason = "unknown certificate usage";
	else if (rec->selector > DANE_SELECTOR_SPKI)
		reason = "unknown selector";
	else if (rec->mtype > DANE_MTYPE_SHA512)
		reason = "unknown matching type";
	else if (opts->smtp && rec->usage <= DANE_USAGE_PKIX_EE)
		reason = "PKIX usages are unusable for SMTP (RFC 7672 section 3.1.3)";
	else if (rec->len == 0 || rec->data == NULL)
		reason = "empty association data";
	else if (rec->mtype == DANE_MTYPE_SHA256 && rec->len != WC_SHA256_DIGEST_SIZE)
		reason = "SHA-256 data is not 32 bytes";
	else if (rec->mtype == DANE_MTYPE_SHA512 && rec->len != WC_SHA512_DIGEST_SIZE)
		reason = "SHA-512 data is not 64 bytes";
	else if (rec->mtype != DANE_MTYPE_FULL && digest_rank(opts, rec->mtype) < 0)
		reason = "matching type disabled by the digest preference";
	else if (rec->mtype == DANE_MTYPE_FULL && rec->selector == DANE_SELECTOR_CERT) {
		char err[160];
		struct dane_cert *c = cert_parse(rec->data, rec->len, err, sizeof(err));
		if (c == NULL)
			reason = "full data is not exactly one DER certificate";
		cert_free(c);
	} else if (rec->mtype == DANE_MTYPE_FULL && rec->selector == DANE_SELECTOR_SPKI) {
		const unsigned char *p = rec->data;
		WOLFSSL_EVP_PKEY *key = NULL;
		/* wolfSSL_d2i_PUBKEY does not advance p, so "exactly one" is checked on the outer SEQUENCE. */
		if (der_sequence_len(rec->data, rec->len) != rec->len ||
		    (key = wolfSSL_d2i_PUBKEY(NULL, &p, (long)rec->len)) == NULL)
			reason = "full data is not exactly one DER SubjectPublicKeyInfo";
		wolfSSL_EVP_PKEY_free(key);
	}
	if (why != NULL)
		*why = reason;
	return reason == NULL;
}

/* classify_records - mark usable and compared records (section 1, digest agility per (usage, selector) group). */
static int classify_records(struct vctx *v, const struct dane_tlsa *records, size_t n)
{
	int best[4][2];
	size_t i;
	int u, s, rank;
	char err[160];

	for (u = 0; u < 4; u++)
		for (s = 0; s < 2; s++)
			best[u][s] = -1;
	for (i = 0; i < n; i++) {
		struct rec_state *r = &v->rs[i];
		r->rec = &records[i];
		r->usable = dane_record_usable(r->rec, v->opts, NULL);
		if (!r->usable || r->rec->mtype == DANE_MTYPE_FULL)
			continue;
		rank = digest_rank(v->opts, r->rec->mtype);
		if (best[r->rec->usage][r->rec->selector] < 0 || rank < best[r->rec->usage][r->rec->selector])
			best[r->rec->usage][r->rec->selector] = rank;
	}
	for (i = 0; i < n; i++) {
		struct rec_state *r = &v->rs[i];
		if (!r->usable)
			continue;
		r->compared = r->rec->mtype == DANE_MTYPE_FULL ||
			      digest_rank(v->opts, r->rec->mtype) == best[r->rec->usage][r->rec->selector];
		if (r->rec->mtype != DANE_MTYPE_FULL)
			continue;
		if (r->rec->selector == DANE_SELECTOR_CERT) {
			r->full_cert = cert_parse(r->rec->data, r->rec->len, err, sizeof(err));
			if (r->full_cert == NULL)
				return -1;
		} else {
			const unsigned char *p = r->rec->data;
			r->full_key = wolfSSL_d2i_PUBKEY(NULL, &p, (long)r->rec->len);
			if (r->full_key == NULL)
				return -1;
		}
	}
	return 0;
}

/* record_matches_cert - compare one record with one certificate (selector, then exact bytes or digest). */
static int record_matches_cert(const struct dane_tlsa *rec, const struct dane_cert *c)
{
	const uint8_t *data = rec->selector == DANE_SELECTOR_CERT ? c->der : c->spki;
	size_t len = rec->selector == DANE_SELECTOR_CERT ? c->der_len : c->spki_len;
	uint8_t digest[WC_SHA512_DIGEST_SIZE];

	switch (rec->mtype) {
	case DANE_MTYPE_FULL:
		return rec->len == len && memcmp(rec->data, data, len) == 0;
	case DANE_MTYPE_SHA256:
		return wc_Sha256Hash(data, (word32)len, digest) == 0 &&
		       memcmp(rec->data, digest, WC_SHA256_DIGEST_SIZE) == 0;
	case DANE_MTYPE_SHA512:
		return wc_Sha512Hash(data, (word32)len, digest) == 0 &&
		       memcmp(rec->data, digest, WC_SHA512_DIGEST_SIZE) == 0;
	}
	return 0;
}

/*
 * find_record - index of the first compared record of one of the usages that matches node, or -1.
 * A certificate supplied by a TLSA record matches only full-data records (nobody sent it, so no digest
 * can vouch for it); a certificate from the PKIX store matches only usages 0/1 (section 2).
 */
static int find_record(const struct vctx *v, const struct path_node *node, int usage_a, int usage_b)
{
	size_t i;

	for (i = 0; i < v->n_rs; i++) {
		const struct rec_state *r = &v->rs[i];
		if (!r->compared || (r->rec->usage != usage_a && r->rec->usage != usage_b))
			continue;
		if (node->origin == ORIGIN_TLSA && r->rec->mtype != DANE_MTYPE_FULL)
			continue;
		if (node->origin == ORIGIN_STORE && r->rec->usage >= DANE_USAGE_DANE_TA)
			continue;
		if (record_matches_cert(r->rec, node->cert))
			return (int)i;
	}
	return -1;
}

/* has_compared - 1 when some compared record has one of the usages. */
static int has_compared(const struct vctx *v, int usage_a, int usage_b)
{
	size_t i;

	for (i = 0; i < v->n_rs; i++)
		if (v->rs[i].compared && (v->rs[i].rec->usage == usage_a || v->rs[i].rec->usage == usage_b))
			return 1;
	return 0;
}

/* ---------- failures ---------- */

/* note_failure - remember a failure unless a better one is already known. */
static void __attribute__((format(printf, 6, 7)))
note_failure(struct vctx *v, const char *reason, int matched, int depth, int record, const char *fmt, ...)
{
	va_list ap;

	if (v->fail.reason != NULL && (v->fail.matched || !matched))
		return;
	v->fail.reason = reason;
	v->fail.matched = matched;
	v->fail.depth = depth;
	v->fail.record = record;
	va_start(ap, fmt);
	vsnprintf(v->fail.detail, sizeof(v->fail.detail), fmt, ap);
	va_end(ap);
}

/* ref_name - the reference name explanations quote (the original host name when there are two), printable. */
static const char *ref_name(const struct vctx *v, char *buf, size_t len)
{
	const char *name = v->n_names ? v->names[v->n_names > 1 ? 1 : 0] : "(no name)";

	return dane_printable(name, strlen(name), buf, len);
}

/* ---------- paths (section 3) ---------- */

/* cert_same_ca - 1 when a and b have the same subject and the same public key: the same CA, maybe another copy. */
static int cert_same_ca(const struct dane_cert *a, const struct dane_cert *b)
{
	return a == b || (a->spki_len == b->spki_len && memcmp(a->spki, b->spki, a->spki_len) == 0 &&
			  wolfSSL_X509_NAME_cmp(wolfSSL_X509_get_subject_name(a->x509),
						wolfSSL_X509_get_subject_name(b->x509)) == 0);
}

/*
 * in_path - 1 when c, or a certificate with c's subject and key, is already in the path. A path never visits a
 * CA twice: loops in hostile chains end here, a self-signed certificate is never its own issuer, and a TLSA
 * record's copy of a certificate already in the path does not extend it (section 2, and the README's rule for
 * TA records that name a self-signed leaf).
 */
static int in_path(const struct path_node *path, size_t n, const struct dane_cert *c)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cert_same_ca(path[i].cert, c))
			return 1;
	return 0;
}

/* cert_in_date - 1 when the verification time is inside c's validity. */
static int cert_in_date(const struct vctx *v, const struct dane_cert *c)
{
	return v->now >= c->not_before && v->now <= c->not_after;
}

/* What a path search looks for above the leaf. */
enum search_goal {
	GOAL_DANE_TA,    /* a certificate that matches a DANE-TA record (section 3.3) */
	GOAL_BARE_KEY,   /* a certificate signed by a "2 1 0" key, the last resort (section 3.4) */
	GOAL_PKIX,       /* a certificate of the PKIX trust store (section 3.5, and PKIX-only verification) */
};

/* One depth-first search for a path from the leaf to what goal asks for. */
struct search {
	enum search_goal goal;
	int with_records;       /* GOAL_PKIX: a PKIX-TA/PKIX-EE record must match the path too */
	int ee_record;          /* GOAL_PKIX: the PKIX-EE record that matched the leaf, or -1 */
	size_t pkix_valid_len;  /* GOAL_PKIX: length of a PKIX-valid path no record matched, 0 if none */
	struct path_node path[DANE_MAX_CHAIN + 1];
	size_t n;               /* found: the path's length */
	int depth;              /* found: the anchor's depth (DANE), the matching record's depth (PKIX), or -1 */
	int record;             /* found: the record that matched, or -1 */
};

/* A possible issuer of the certificate on top of the path; lower ranks are tried first. */
struct candidate {
	struct path_node node;
	int rank;
};

#define MAX_CANDIDATES 32   /* possible issuers considered for one certificate */

/* search_start - an empty search for goal, with the leaf as its path. */
static void search_start(const struct vctx *v, struct search *s, enum search_goal goal)
{
	memset(s, 0, sizeof(*s));
	s->goal = goal;
	s->ee_record = -1;
	s->depth = -1;
	s->record = -1;
	s->path[0] = (struct path_node){v->chain->certs[0], ORIGIN_PEER, -1};
}

/* search_found - record the path s->path[0 .. n) as the answer; returns 1. */
static int search_found(struct search *s, size_t n, int depth, int record)
{
	s->n = n;
	s->depth = depth;
	s->record = record;
	return 1;
}

/*
 * search_budget - count one signature check against DANE_MAX_EDGES; 0 once the budget is spent (the search gives
 * up, and says so unless a failure where a record matched is already known).
 */
static int search_budget(struct vctx *v, const struct search *s)
{
	if (v->edges < DANE_MAX_EDGES) {
		v->edges++;
		return 1;
	}
	if (!v->gave_up) {
		v->gave_up = 1;
		if (!v->fail.matched)
			v->fail.reason = NULL;
		note_failure(v, s->goal == GOAL_PKIX ? dane_err_pkix_untrusted : dane_err_no_match, 0, -1, -1,
			     "gave up building a chain after %d candidate issuer signatures (%zu certificates sent)",
			     DANE_MAX_EDGES, v->n_chain);
	}
	return 0;
}

/* candidate_add - append cand when it names the top's issuer and is not in the path yet (bounded). */
static void candidate_add(const struct vctx *v, const struct search *s, size_t n, struct candidate *cands,
			  size_t *m, struct dane_cert *cand, enum cert_origin origin, int tlsa_index, int source_rank)
{
	if (*m >= MAX_CANDIDATES || !cert_names_issuer(s->path[n - 1].cert, cand) || in_path(s->path, n, cand))
		return;
	cands[*m].node = (struct path_node){cand, origin, tlsa_index};
	cands[*m].rank = source_rank * 2 + !cert_in_date(v, cand);
	(*m)++;
}

/*
 * candidates - the possible issuers of the path's top, in the order they are tried: full certificates from
 * DNS first ("2 0 0" for DANE, "0 0 0" for PKIX: section 2), then the trust store (PKIX only), then what the
 * server sent in wire order; within each, certificates in date before expired or not yet valid ones.
 */
static size_t candidates(const struct vctx *v, const struct search *s, size_t n, struct candidate *cands)
{
	const struct dane_store *store = s->goal == GOAL_PKIX ? v->opts->store : NULL;
	int tlsa_usage = s->goal == GOAL_PKIX ? (s->with_records ? DANE_USAGE_PKIX_TA : -1) : DANE_USAGE_DANE_TA;
	struct candidate tmp;
	size_t i, j, m = 0;

	for (i = 0; i < v->n_rs; i++) {
		const struct rec_state *r = &v->rs[i];
		if (r->full_cert != NULL && r->compared && r->rec->usage == tlsa_usage)
			candidate_add(v, s, n, cands, &m, r->full_cert, ORIGIN_TLSA, (int)i, 0);
	}
	for (i = 0; store != NULL && i < store->n; i++)
		candidate_add(v, s, n, cands, &m, store->certs[i], ORIGIN_STORE, -1, 1);
	for (i = 1; i < v->n_chain; i++)
		candidate_add(v, s, n, cands, &m, v->chain->certs[i], ORIGIN_PEER, -1, 2);
	/* A stable insertion sort: equal ranks keep the order above. */
	for (i = 1; i < m; i++) {
		tmp = cands[i];
		for (j = i; j > 0 && cands[j - 1].rank > tmp.rank; j--)
			cands[j] = cands[j - 1];
		cands[j] = tmp;
	}
	return m;
}

/* fmt_time - ISO 8601 UTC. */
static void fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "(unrepresentable time)");
}

/*
 * check_path - PKIX checks on path[0 .. below) (everything below the anchor): dates, CA flag and path length for
 * issuers, key usage and EKU for TLS server use, the anchor's own dates when check_anchor_dates, and the host name
 * on the leaf. Returns NULL when all pass, else the reason (detail written to v->fail via note_failure).
 */
static const char *check_path(struct vctx *v, const struct path_node *path, size_t below, size_t anchor,
			      int check_anchor_dates, int record)
{
	size_t i, dated = check_anchor_dates ? anchor + 1 : below;
	int non_self_issued = 0;
	char subject[160], when[32], name[260];

	/* Dates of everything below the anchor, and of the anchor itself when asked (self-issued or PKIX root). */
	for (i = 0; i < dated; i++) {
		const struct dane_cert *c = path[i].cert;
		if (v->now < c->not_before || v->now > c->not_after) {
			int expired = v->now > c->not_after;
			cert_subject(c, subject, sizeof(subject));
			fmt_time(expired ? c->not_after : c->not_before, when, sizeof(when));
			note_failure(v, expired ? dane_err_expired : dane_err_not_yet_valid, 1, (int)anchor, record,
				     "certificate at depth %zu (%s) %s %s", i, subject,
				     expired ? "expired" : "is not valid before", when);
			return v->fail.reason;
		}
	}
	for (i = 1; i < below; i++) {
		const struct dane_cert *c = path[i].cert;
		cert_subject(c, subject, sizeof(subject));
		if (!c->is_ca || (c->has_ku && !(c->ku & KEYUSE_KEY_CERT_SIGN))) {
			note_failure(v, dane_err_not_ca, 1, (int)anchor, record,
				     "certificate at depth %zu (%s) is not a CA but issued the one below it", i, subject);
			return v->fail.reason;
		}
		if (c->pathlen >= 0 && non_self_issued > c->pathlen) {
			note_failure(v, dane_err_not_ca, 1, (int)anchor, record,
				     "certificate at depth %zu (%s) allows path length %d, chain below it has %d", i,
				     subject, c->pathlen, non_self_issued);
			return v->fail.reason;
		}
		if (!c->self_issued)
			non_self_issued++;
		if (c->has_eku && !(c->eku & (XKU_SSL_SERVER | XKU_ANYEKU))) {
			note_failure(v, dane_err_bad_usage, 1, (int)anchor, record,
				     "CA at depth %zu (%s) is restricted to other extended key usages", i, subject);
			return v->fail.reason;
		}
	}
	{
		const struct dane_cert *leaf = path[0].cert;
		cert_subject(leaf, subject, sizeof(subject));
		if (leaf->has_eku && !(leaf->eku & (XKU_SSL_SERVER | XKU_ANYEKU))) {
			note_failure(v, dane_err_bad_usage, 1, (int)anchor, record,
				     "server certificate (%s) lacks the serverAuth extended key usage", subject);
			return v->fail.reason;
		}
		if (leaf->has_ku &&
		    !(leaf->ku & (KEYUSE_DIGITAL_SIG | KEYUSE_KEY_ENCIPHER | KEYUSE_KEY_AGREE))) {
			note_failure(v, dane_err_bad_usage, 1, (int)anchor, record,
				     "server certificate (%s) key usage allows no TLS key exchange", subject);
			return v->fail.reason;
		}
		if (!cert_matches_names(leaf, v->names, v->n_names)) {
			note_failure(v, dane_err_name_mismatch, 1, (int)anchor, record,
				     "server certificate (%s) is not valid for %s", subject,
				     ref_name(v, name, sizeof(name)));
			return v->fail.reason;
		}
	}
	return NULL;
}

/* verify_dane_ee - section 3.1: a usage-3 match on the leaf authenticates, names only when asked. */
static int verify_dane_ee(struct vctx *v, struct dane_result *res)
{
	struct path_node leaf = {v->chain->certs[0], ORIGIN_PEER, -1};
	char subject[160], name[260];
	int r = find_record(v, &leaf, DANE_USAGE_DANE_EE, DANE_USAGE_DANE_EE);

	if (r < 0)
		return 0;
	if (v->opts->ee_namecheck && (cert_load(v->chain->certs[0], name, sizeof(name)) < 0 ||
				      !cert_matches_names(leaf.cert, v->names, v->n_names))) {
		cert_subject(leaf.cert, subject, sizeof(subject));
		note_failure(v, dane_err_name_mismatch, 1, 0, r, "DANE-EE record matched, but %s is not valid for %s",
			     subject, ref_name(v, name, sizeof(name)));
		return 0;
	}
	res->reason = dane_ok_dane_ee;
	res->depth = 0;
	res->record = r;
	res->chain_len = 1;
	snprintf(res->detail, sizeof(res->detail), "DANE-EE record %d matched the server certificate", r);
	return 1;
}

/*
 * goal_reached - whether the path s->path[0 .. n) ends the search: 1 when it is the answer, -1 when it ends here
 * without one (failure noted; nothing above a matching anchor or a trusted root can change that), 0 to climb on.
 */
static int goal_reached(struct vctx *v, struct search *s, size_t n)
{
	struct path_node *top = &s->path[n - 1];
	size_t i;
	int r;

	switch (s->goal) {
	case GOAL_DANE_TA:
		/* The lowest certificate that matches anchors; usage 2 never matches the leaf (section 2). */
		if (n == 1 || (r = find_record(v, top, DANE_USAGE_DANE_TA, DANE_USAGE_DANE_TA)) < 0)
			return 0;
		if (check_path(v, s->path, n - 1, n - 1, top->cert->self_issued, r) != NULL)
			return -1;
		return search_found(s, n, (int)n - 1, r);
	case GOAL_BARE_KEY:
		return 0;
	case GOAL_PKIX:
		if (top->origin != ORIGIN_STORE && !store_contains(v->opts->store, top->cert))
			return 0;
		top->origin = ORIGIN_STORE;
		if (check_path(v, s->path, n - 1, n - 1, 1, s->ee_record) != NULL)
			return -1;
		if (!s->with_records)
			return search_found(s, n, -1, -1);
		if (s->ee_record >= 0)
			return search_found(s, n, 0, s->ee_record);
		for (i = 1; i < n; i++)
			if ((r = find_record(v, &s->path[i], DANE_USAGE_PKIX_TA, DANE_USAGE_PKIX_TA)) >= 0)
				return search_found(s, n, (int)i, r);
		if (s->pkix_valid_len == 0)
			s->pkix_valid_len = n;
		return -1;
	}
	return -1;
}

/*
 * bare_key_anchors - section 3.4: a "2 1 0" key under which the path's top verifies anchors the path, and
 * everything in it is checked. A self-signed leaf is signed by nothing but its own key, so no bare key anchors it
 * (the README's rule for TA records that name a self-signed leaf). Returns 1 with s filled.
 */
static int bare_key_anchors(struct vctx *v, struct search *s, size_t n)
{
	const struct dane_cert *top = s->path[n - 1].cert;
	size_t i;

	if (n == 1 && top->self_issued) {
		if (!search_budget(v, s) || cert_signed_by(top, top))
			return 0;
	}
	for (i = 0; i < v->n_rs; i++) {
		const struct rec_state *r = &v->rs[i];
		if (r->full_key == NULL || !r->compared || r->rec->usage != DANE_USAGE_DANE_TA)
			continue;
		if (!search_budget(v, s))
			return 0;
		if (!cert_signed_by_key(top, r->full_key))
			continue;
		if (check_path(v, s->path, n, n - 1, 1, (int)i) != NULL)
			return 0;   /* another key would not change what failed below it */
		return search_found(s, n, (int)n - 1, (int)i);
	}
	return 0;
}

/*
 * search_from - depth-first search above s->path[0 .. n) for a path that reaches s->goal, trying every issuer
 * candidate in turn (backtracking) within the depth limit DANE_MAX_CHAIN and the budget DANE_MAX_EDGES.
 * Bare keys are tried on the way back down, so the highest certificate they sign anchors. Returns 1 when found.
 */
static int search_from(struct vctx *v, struct search *s, size_t n)
{
	struct candidate cands[MAX_CANDIDATES];
	const struct dane_cert *top = s->path[n - 1].cert;
	char subject[160];
	size_t m, k;
	int reached = goal_reached(v, s, n), extended = 0;

	if (reached != 0)
		return reached > 0;
	m = n < DANE_MAX_CHAIN ? candidates(v, s, n, cands) : 0;
	for (k = 0; k < m; k++) {
		if (!search_budget(v, s))
			return 0;
		if (!cert_signed_by(top, cands[k].node.cert)) {
			v->saw_bad_signature = 1;   /* the name and key identifier promised an issuer */
			continue;
		}
		extended = 1;
		s->path[n] = cands[k].node;
		if (search_from(v, s, n + 1))
			return 1;
		if (v->gave_up)
			return 0;
	}
	if (s->goal == GOAL_BARE_KEY)
		return bare_key_anchors(v, s, n);
	if (s->goal == GOAL_PKIX && !extended) {
		cert_subject(top, subject, sizeof(subject));
		note_failure(v, v->saw_bad_signature ? dane_err_bad_signature : dane_err_pkix_untrusted,
			     s->ee_record >= 0, -1, s->ee_record, "no trusted issuer found for %s at depth %zu", subject,
			     n - 1);
	}
	return 0;
}

/* note_ta_names_leaf - explain a DANE-TA record that names the server certificate itself (never a match). */
static void note_ta_names_leaf(struct vctx *v)
{
	const struct dane_cert *leaf = v->chain->certs[0];
	size_t i;

	for (i = 0; i < v->n_rs; i++) {
		const struct rec_state *r = &v->rs[i];
		if (r->compared && r->rec->usage == DANE_USAGE_DANE_TA && record_matches_cert(r->rec, leaf)) {
			note_failure(v, dane_err_no_match, 0, -1, -1,
				     "DANE-TA record %zu names the server certificate itself; usage 2 must name an issuer "
				     "(a self-signed certificate is published as DANE-EE: 3 %u %u)", i, r->rec->selector,
				     r->rec->mtype);
			return;
		}
	}
}

/* has_bare_key - 1 when some compared DANE-TA record is a bare public key ("2 1 0"). */
static int has_bare_key(const struct vctx *v)
{
	size_t i;

	for (i = 0; i < v->n_rs; i++)
		if (v->rs[i].full_key != NULL && v->rs[i].compared && v->rs[i].rec->usage == DANE_USAGE_DANE_TA)
			return 1;
	return 0;
}

/* verify_dane_ta - sections 3.3-3.4: search upward, the lowest DANE-TA match anchors; bare keys last. */
static int verify_dane_ta(struct vctx *v, struct dane_result *res)
{
	struct search s;
	char subject[160];

	if (!has_compared(v, DANE_USAGE_DANE_TA, DANE_USAGE_DANE_TA))
		return 0;
	note_ta_names_leaf(v);
	search_start(v, &s, GOAL_DANE_TA);
	if (!search_from(v, &s, 1)) {
		if (v->gave_up || !has_bare_key(v))
			return 0;
		search_start(v, &s, GOAL_BARE_KEY);
		if (!search_from(v, &s, 1))
			return 0;
	}
	cert_subject(s.path[s.depth].cert, subject, sizeof(subject));
	res->reason = dane_ok_dane_ta;
	res->depth = s.depth;
	res->record = s.record;
	res->chain_len = (int)s.n;
	snprintf(res->detail, sizeof(res->detail), "DANE-TA record %d matched %s at depth %d%s", s.record, subject,
		 s.depth, s.path[s.depth].origin == ORIGIN_TLSA ? " (certificate supplied by the TLSA record)" : "");
	return 1;
}

/* verify_pkix_usages - section 3.5: PKIX-valid chain and a PKIX-TA/EE record matching a certificate of it. */
static int verify_pkix_usages(struct vctx *v, struct dane_result *res)
{
	struct search s;

	if (!has_compared(v, DANE_USAGE_PKIX_TA, DANE_USAGE_PKIX_EE))
		return 0;
	if (v->opts->store == NULL) {
		note_failure(v, dane_err_pkix_no_store, 0, -1, -1, "PKIX-TA/PKIX-EE records need a CA file");
		return 0;
	}
	search_start(v, &s, GOAL_PKIX);
	s.with_records = 1;
	/* Look for the leaf's match first so a PKIX failure can be reported as "record matched, chain invalid". */
	s.ee_record = find_record(v, &s.path[0], DANE_USAGE_PKIX_EE, DANE_USAGE_PKIX_EE);
	if (!search_from(v, &s, 1)) {
		if (s.pkix_valid_len > 0)
			note_failure(v, dane_err_pkix_no_match, 0, -1, -1, "chain of %zu certificates is PKIX-valid",
				     s.pkix_valid_len);
		return 0;
	}
	res->reason = s.depth == 0 ? dane_ok_pkix_ee : dane_ok_pkix_ta;
	res->depth = s.depth;
	res->record = s.record;
	res->chain_len = (int)s.n;
	snprintf(res->detail, sizeof(res->detail), "%s record %d matched at depth %d of a PKIX-valid chain",
		 s.depth == 0 ? "PKIX-EE" : "PKIX-TA", s.record, s.depth);
	return 1;
}

/* result_init - a not-authenticated verdict with no match. */
static void result_init(struct dane_result *res)
{
	memset(res, 0, sizeof(*res));
	res->depth = -1;
	res->record = -1;
}

/* result_fail - copy the best noted failure (or fallback) into the result. */
static void result_fail(const struct vctx *v, struct dane_result *res, const char *fallback)
{
	res->authenticated = 0;
	res->reason = v->fail.reason ? v->fail.reason : fallback;
	res->depth = v->fail.reason && v->fail.matched ? v->fail.depth : -1;
	res->record = v->fail.reason && v->fail.matched ? v->fail.record : -1;
	snprintf(res->detail, sizeof(res->detail), "%s", v->fail.reason ? v->fail.detail : fallback);
}

int dane_verify(const struct dane_chain *chain, const struct dane_tlsa *records, size_t n_records,
		const char *const *names, size_t n_names, const struct dane_options *opts, struct dane_result *res)
{
	struct vctx v;
	size_t i;
	int rc = 0;

	result_init(res);
	memset(&v, 0, sizeof(v));
	v.chain = chain;
	v.opts = opts;
	v.names = names;
	v.n_names = n_names > DANE_MAX_NAMES ? DANE_MAX_NAMES : n_names;
	v.now = opts->now ? opts->now : time(NULL);
	v.n_rs = n_records > DANE_MAX_RECORDS ? DANE_MAX_RECORDS : n_records;
	v.rs = calloc(v.n_rs ? v.n_rs : 1, sizeof(*v.rs));
	if (v.rs == NULL)
		goto internal;
	if (classify_records(&v, records, v.n_rs) < 0)
		goto internal;
	for (i = 0; i < v.n_rs; i++) {
		if (v.rs[i].usable)
			res->usable_records++;
		else
			res->unusable_records++;
	}
	if (chain == NULL || chain->n == 0) {
		result_fail(&v, res, dane_err_empty_chain);
		goto done;
	}
	if (res->usable_records == 0) {
		snprintf(v.fail.detail, sizeof(v.fail.detail), "%d TLSA records, all unusable", res->unusable_records);
		v.fail.reason = dane_err_no_usable;
		result_fail(&v, res, dane_err_no_usable);
		goto done;
	}
	/* DANE-EE compares the leaf's DER or SPKI only; the other usages build paths and need every attribute. */
	if (verify_dane_ee(&v, res) ||
	    ((v.n_chain = chain_load(chain)) > 0 && (verify_dane_ta(&v, res) || verify_pkix_usages(&v, res)))) {
		res->authenticated = 1;
		goto done;
	}
	if (v.fail.reason == NULL && v.saw_bad_signature)
		note_failure(&v, dane_err_bad_signature, 0, -1, -1, "a certificate's signature does not verify under its issuer");
	result_fail(&v, res, dane_err_no_match);
	if (v.fail.reason == NULL)
		snprintf(res->detail, sizeof(res->detail), "none of %d usable TLSA records matched the %zu certificates presented",
			 res->usable_records, chain->n);
	goto done;
internal:
	res->reason = dane_err_internal;
	snprintf(res->detail, sizeof(res->detail), "out of memory or certificate library failure");
	rc = -1;
done:
	res->issuers_tried = v.edges;
	for (i = 0; v.rs != NULL && i < v.n_rs; i++) {
		cert_free(v.rs[i].full_cert);
		wolfSSL_EVP_PKEY_free(v.rs[i].full_key);
	}
	free(v.rs);
	return rc;
}

int dane_verify_pkix(const struct dane_chain *chain, const char *const *names, size_t n_names,
		     const struct dane_options *opts, struct dane_result *res)
{
	struct search s;
	struct vctx v;

	result_init(res);
	memset(&v, 0, sizeof(v));
	v.chain = chain;
	v.opts = opts;
	v.names = names;
	v.n_names = n_names > DANE_MAX_NAMES ? DANE_MAX_NAMES : n_names;
	v.now = opts->now ? opts->now : time(NULL);
	if (chain == NULL || (v.n_chain = chain_load(chain)) == 0) {
		result_fail(&v, res, dane_err_empty_chain);
		return 0;
	}
	if (opts->store == NULL) {
		result_fail(&v, res, dane_err_pkix_no_store);
		return 0;
	}
	search_start(&v, &s, GOAL_PKIX);
	if (!search_from(&v, &s, 1)) {
		result_fail(&v, res, dane_err_pkix_untrusted);
		res->depth = -1;
		res->record = -1;
		res->issuers_tried = v.edges;
		return 0;
	}
	res->authenticated = 1;
	res->reason = dane_ok_pkix;
	res->chain_len = (int)s.n;
	res->issuers_tried = v.edges;
	snprintf(res->detail, sizeof(res->detail), "chain of %zu certificates leads to a trusted root", s.n);
	return 0;
}

/* dns_chars - 1 when (s, len) holds only printable ASCII without blanks: all a DNS name can be, and safe to print. */
static int dns_chars(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

int dane_chain_dns_name(const struct dane_chain *chain, size_t i, char *buf, size_t len)
{
	WOLFSSL_STACK *sans;
	int k, n, found = -1;

	if (i >= chain_load(chain) || len == 0)
		return -1;
	sans = wolfSSL_X509_get_ext_d2i(chain->certs[i]->x509, NID_subject_alt_name, NULL, NULL);
	n = sans ? wolfSSL_sk_GENERAL_NAME_num(sans) : 0;
	for (k = 0; k < n && found < 0; k++) {
		WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(sans, k);
		if (gn != NULL && gn->type == GEN_DNS && gn->d.dNSName != NULL) {
			const char *s = (const char *)wolfSSL_ASN1_STRING_get0_data(gn->d.dNSName);
			int slen = wolfSSL_ASN1_STRING_length(gn->d.dNSName);
			if (s != NULL && slen > 0 && (size_t)slen < len && dns_chars(s, (size_t)slen)) {
				memcpy(buf, s, (size_t)slen);
				buf[slen] = '\0';
				found = 0;
			}
		}
	}
	if (sans != NULL)
		wolfSSL_GENERAL_NAMES_free(sans);
	if (found == 0)
		return 0;
	n = wolfSSL_X509_NAME_get_text_by_NID(wolfSSL_X509_get_subject_name(chain->certs[i]->x509), NID_commonName,
					      buf, (int)len);
	return n > 0 && dns_chars(buf, strlen(buf)) ? 0 : -1;
}

void dane_chain_describe(const struct dane_chain *chain, size_t i, char *subject, size_t subject_len, char *issuer,
			 size_t issuer_len, time_t *not_before, time_t *not_after)
{
	const struct dane_cert *c;

	if (i >= chain_load(chain)) {
		snprintf(subject, subject_len, "(unreadable)");
		snprintf(issuer, issuer_len, "(unreadable)");
		*not_before = *not_after = 0;
		return;
	}
	c = chain->certs[i];
	cert_subject(c, subject, subject_len);
	name_printable(wolfSSL_X509_get_issuer_name(c->x509), issuer, issuer_len);
	*not_before = c->not_before;
	*not_after = c->not_after;
}
