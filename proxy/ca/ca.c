/*
 * ca.c - the local CA: creation, loading, renewal, and minting leaves with wolfCrypt's certificate generation.
 *
 * Private keys are written with O_CREAT|O_EXCL and mode 0600 into a 0700 directory, to a temporary name then
 * renamed, so a crash never leaves a half-written key and no other user ever sees one.
 */
#include "ca.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include "fileio.h"

#define CA_DER_MAX 4096
#define CA_MAX_CONSTRAINTS 32

struct ca {
	char dir[900];
	char cert_path[1024];
	WC_RNG rng;
	int rng_ok;
	ecc_key ca_key;
	int ca_key_ok;
	ecc_key leaf_key;
	int leaf_key_ok;
	uint8_t cert[CA_DER_MAX];
	size_t cert_len;
	uint8_t leaf_key_der[256];
	size_t leaf_key_len;
	int renewed;
	char permitted[CA_MAX_CONSTRAINTS][254];
	size_t n_permitted;
};

void ca_default_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (geteuid() == 0)
		snprintf(buf, len, "/var/lib/daneproxy");
	else if (xdg != NULL && xdg[0] == '/')
		snprintf(buf, len, "%s/daneproxy", xdg);
	else if (home != NULL && home[0] == '/')
		snprintf(buf, len, "%s/.local/state/daneproxy", home);
	else
		snprintf(buf, len, "./daneproxy-state");
}

/* mkdir_p - create dir and its parents; the last component with mode 0700. */
static int mkdir_p(const char *dir, char *err, size_t errlen)
{
	char path[1024];
	size_t i, n = strlen(dir);

	if (n == 0 || n >= sizeof(path)) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	memcpy(path, dir, n + 1);
	for (i = 1; i < n; i++) {
		if (path[i] != '/')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		path[i] = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* write_file - atomically write data to path with mode (0600 for keys). */
static int write_file(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t errlen)
{
	char tmp[1100];
	int fd;
	ssize_t w;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	w = write(fd, data, len);
	if (w < 0 || (size_t)w != len || fsync(fd) < 0) {
		snprintf(err, errlen, "%s: write failed: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* key_generate_and_save - a fresh P-256 key written as PEM (0600). */
static int key_generate_and_save(struct ca *ca, ecc_key *key, const char *path, char *err, size_t errlen)
{
	uint8_t der[256];
	char pem[512];
	int der_len, pem_len;

	if (wc_ecc_make_key_ex(&ca->rng, 32, key, ECC_SECP256R1) != 0) {
		snprintf(err, errlen, "cannot generate an ECDSA P-256 key");
		return -1;
	}
	der_len = wc_EccKeyToDer(key, der, sizeof(der));
	if (der_len <= 0) {
		snprintf(err, errlen, "cannot encode the private key");
		return -1;
	}
	pem_len = wc_DerToPem(der, (word32)der_len, (byte *)pem, sizeof(pem), ECC_PRIVATEKEY_TYPE);
	if (pem_len <= 0) {
		snprintf(err, errlen, "cannot encode the private key as PEM");
		return -1;
	}
	return write_file(path, pem, (size_t)pem_len, 0600, err, errlen);
}

/* key_load - a PEM EC private key; refuses keys readable by others. */
static int key_load(ecc_key *key, const char *path, uint8_t *der_out, size_t *der_out_len, char *err, size_t errlen)
{
	struct stat st;
	char *pem = NULL;
	size_t len;
	uint8_t der[512];
	int der_len;
	word32 idx = 0;

	if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: private key is accessible by other users (mode %03o); chmod 600 it", path,
			 (unsigned)(st.st_mode & 0777));
		return -1;
	}
	if (file_read_all(path, 16384, &pem, &len, err, errlen) < 0)
		return -1;
	der_len = wc_KeyPemToDer((const unsigned char *)pem, (int)len, der, sizeof(der), NULL);
	free(pem);
	if (der_len <= 0 || wc_EccPrivateKeyDecode(der, &idx, key, (word32)der_len) != 0) {
		snprintf(err, errlen, "%s: not an EC private key in PEM", path);
		return -1;
	}
	if (der_out != NULL) {
		if ((size_t)der_len > *der_out_len) {
			snprintf(err, errlen, "%s: key too large", path);
			return -1;
		}
		memcpy(der_out, der, (size_t)der_len);
		*der_out_len = (size_t)der_len;
	}
	return 0;
}

/* cert_days_left - validity left on the CA certificate, in days (negative when expired); -1000 if unreadable. */
static long cert_days_left(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	WOLFSSL_X509 *x = wolfSSL_d2i_X509(NULL, &p, (int)len);
	struct tm tm;
	long days = -1000;

	if (x == NULL)
		return days;
	memset(&tm, 0, sizeof(tm));
	if (wolfSSL_ASN1_TIME_to_tm(wolfSSL_X509_get_notAfter(x), &tm) == WOLFSSL_SUCCESS)
		days = (long)((timegm(&tm) - time(NULL)) / 86400);
	wolfSSL_X509_free(x);
	return days;
}

/* ---------- nameConstraints: the one extension wolfCrypt's generator cannot add (no custom OIDs here) ---------- */

/* der_len_size - bytes needed to encode a DER length. */
static size_t der_len_size(size_t len)
{
	return len < 0x80 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 4;
}

/* der_put_header - tag and length at out; returns the header size. */
static size_t der_put_header(uint8_t *out, uint8_t tag, size_t len)
{
	size_t n = der_len_size(len), i;

	out[0] = tag;
	if (n == 1) {
		out[1] = (uint8_t)len;
		return 2;
	}
	out[1] = (uint8_t)(0x80 | (n - 1));
	for (i = 0; i < n - 1; i++)
		out[2 + i] = (uint8_t)(len >> (8 * (n - 2 - i)));
	return 1 + n;
}

/* der_get_header - read tag and length at p (within end); returns the header size, 0 when malformed. */
static size_t der_get_header(const uint8_t *p, const uint8_t *end, uint8_t *tag, size_t *len)
{
	size_t n, i, v = 0;

	if (end - p < 2)
		return 0;
	*tag = p[0];
	if (p[1] < 0x80) {
		*len = p[1];
		return 2;
	}
	n = p[1] & 0x7f;
	if (n == 0 || n > 3 || (size_t)(end - p) < 2 + n)
		return 0;
	for (i = 0; i < n; i++)
		v = v << 8 | p[2 + i];
	*len = v;
	return 2 + n;
}

/* name_constraints_ext - Extension { nameConstraints, critical, NameConstraints { permitted [0] { dNSName } } }. */
static size_t name_constraints_ext(const struct ca *ca, uint8_t *out, size_t cap)
{
	static const uint8_t oid_and_critical[] = {0x06, 0x03, 0x55, 0x1d, 0x1e, 0x01, 0x01, 0xff};
	uint8_t subtrees[CA_MAX_CONSTRAINTS * 264], *p = subtrees;
	size_t i, n, sub_len, nc_len, oct_len, ext_len, total;

	for (i = 0; i < ca->n_permitted; i++) {
		n = strlen(ca->permitted[i]);
		/* GeneralSubtree { base [2] IA5String } */
		p += der_put_header(p, 0x30, 1 + der_len_size(n) + n);
		p += der_put_header(p, 0x82, n);
		memcpy(p, ca->permitted[i], n);
		p += n;
	}
	sub_len = (size_t)(p - subtrees);
	nc_len = 1 + der_len_size(sub_len) + sub_len;            /* [0] permittedSubtrees */
	oct_len = 1 + der_len_size(nc_len) + nc_len;              /* NameConstraints SEQUENCE */
	ext_len = sizeof(oid_and_critical) + 1 + der_len_size(oct_len) + oct_len;
	total = 1 + der_len_size(ext_len) + ext_len;
	if (total > cap)
		return 0;
	p = out;
	p += der_put_header(p, 0x30, ext_len);
	memcpy(p, oid_and_critical, sizeof(oid_and_critical));
	p += sizeof(oid_and_critical);
	p += der_put_header(p, 0x04, oct_len);
	p += der_put_header(p, 0x30, nc_len);
	p += der_put_header(p, 0xa0, sub_len);
	memcpy(p, subtrees, sub_len);
	return total;
}

/*
 * add_extension - append ext to the extensions of the TBSCertificate in buf[0..tbs_len) (rewriting the three
 * enclosing lengths); returns the new TBS length or 0.
 */
static size_t add_extension(uint8_t *buf, size_t tbs_len, size_t cap, const uint8_t *ext, size_t ext_len)
{
	const uint8_t *end = buf + tbs_len, *p;
	uint8_t tag, tmp[CA_DER_MAX];
	size_t h, len, tbs_content, exp_off, exp_h, exp_len, seq_h, seq_len, new_seq, new_exp, new_tbs, out_len;

	h = der_get_header(buf, end, &tag, &tbs_content);
	if (h == 0 || tag != 0x30 || h + tbs_content != tbs_len)
		return 0;
	/* Walk the TBS fields to the explicit [3] extensions, which wolfCrypt writes last. */
	for (p = buf + h; p < end; p += len) {
		size_t fh = der_get_header(p, end, &tag, &len);
		if (fh == 0 || (size_t)(end - p) < fh + len)
			return 0;
		len += fh;
		if (tag == 0xa3)
			break;
	}
	if (p >= end || p + len != end)
		return 0;
	exp_off = (size_t)(p - buf);
	exp_h = der_get_header(p, end, &tag, &exp_len);
	seq_h = der_get_header(p + exp_h, end, &tag, &seq_len);
	if (exp_h == 0 || seq_h == 0 || tag != 0x30 || exp_h + seq_h + seq_len != len)
		return 0;
	new_seq = seq_len + ext_len;
	new_exp = 1 + der_len_size(new_seq) + new_seq;
	new_tbs = (exp_off - h) + 1 + der_len_size(new_exp) + new_exp;
	out_len = 1 + der_len_size(new_tbs) + new_tbs;
	if (out_len > cap || out_len > sizeof(tmp))
		return 0;
	/* Rebuild into tmp: header, the fields before [3], [3] { SEQUENCE { old extensions, ext } }. */
	{
		uint8_t *o = tmp;
		o += der_put_header(o, 0x30, new_tbs);
		memcpy(o, buf + h, exp_off - h);
		o += exp_off - h;
		o += der_put_header(o, 0xa3, new_seq + 1 + der_len_size(new_seq));
		o += der_put_header(o, 0x30, new_seq);
		memcpy(o, buf + exp_off + exp_h + seq_h, seq_len);
		o += seq_len;
		memcpy(o, ext, ext_len);
		o += ext_len;
		out_len = (size_t)(o - tmp);
	}
	memcpy(buf, tmp, out_len);
	return out_len;
}

/* make_ca_cert - a self-signed CA certificate for the CA key, saved as ca.pem. */
static int make_ca_cert(struct ca *ca, char *err, size_t errlen)
{
	Cert cert;
	char host[64], pem[CA_DER_MAX * 2];
	int len, pem_len, body;

	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (wc_InitCert(&cert) != 0)
		goto fail;
	cert.sigType = CTC_SHA256wECDSA;
	cert.isCA = 1;
	cert.pathLen = 0;
	cert.pathLenSet = 1;
	cert.daysValid = CA_VALIDITY_DAYS;
	cert.selfSigned = 1;
	snprintf(cert.subject.org, CTC_NAME_SIZE, "daneproxy");
	snprintf(cert.subject.commonName, CTC_NAME_SIZE, "daneproxy local CA %.40s", host);
	if (wc_SetKeyUsage(&cert, "keyCertSign,cRLSign") != 0 ||
	    wc_SetSubjectKeyIdFromPublicKey_ex(&cert, ECC_TYPE, &ca->ca_key) != 0)
		goto fail;
	len = wc_MakeCert_ex(&cert, ca->cert, sizeof(ca->cert), ECC_TYPE, &ca->ca_key, &ca->rng);
	if (len <= 0)
		goto fail;
	body = cert.bodySz;
	if (ca->n_permitted > 0) {
		uint8_t ext[CA_MAX_CONSTRAINTS * 270];
		size_t ext_len = name_constraints_ext(ca, ext, sizeof(ext));
		size_t tbs = ext_len ? add_extension(ca->cert, (size_t)body, sizeof(ca->cert), ext, ext_len) : 0;
		if (tbs == 0) {
			snprintf(err, errlen, "cannot add the name constraints to the CA certificate");
			return -1;
		}
		body = (int)tbs;
	}
	len = wc_SignCert_ex(body, cert.sigType, ca->cert, sizeof(ca->cert), ECC_TYPE, &ca->ca_key, &ca->rng);
	if (len <= 0)
		goto fail;
	ca->cert_len = (size_t)len;
	pem_len = wc_DerToPem(ca->cert, (word32)len, (byte *)pem, sizeof(pem), CERT_TYPE);
	if (pem_len <= 0)
		goto fail;
	return write_file(ca->cert_path, pem, (size_t)pem_len, 0644, err, errlen);
fail:
	snprintf(err, errlen, "cannot create the CA certificate");
	return -1;
}

/* constraints_text - the permitted names as one comma-separated line (what ca.constraints records). */
static void constraints_text(const struct ca *ca, char *buf, size_t len)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < ca->n_permitted && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "", ca->permitted[i]);
}

/* constraints_changed - the CA on disk was issued with other name constraints than asked for now. */
static int constraints_changed(const struct ca *ca)
{
	char path[1100], want[CA_MAX_CONSTRAINTS * 256], err[200], *have = NULL;
	size_t len;
	int changed;

	snprintf(path, sizeof(path), "%s/ca.constraints", ca->dir);
	constraints_text(ca, want, sizeof(want));
	if (file_read_all(path, sizeof(want), &have, &len, err, sizeof(err)) < 0)
		return want[0] != '\0';
	while (len > 0 && (have[len - 1] == '\n' || have[len - 1] == '\r'))
		have[--len] = '\0';
	changed = strcmp(have, want) != 0;
	free(have);
	return changed;
}

static int save_constraints(const struct ca *ca, char *err, size_t errlen)
{
	char path[1100], text[CA_MAX_CONSTRAINTS * 256 + 2];
	size_t n;

	snprintf(path, sizeof(path), "%s/ca.constraints", ca->dir);
	constraints_text(ca, text, sizeof(text) - 1);
	n = strlen(text);
	text[n++] = '\n';
	return write_file(path, text, n, 0644, err, errlen);
}

static int ca_open_impl(struct ca *ca, const char *state_dir, int create, int constrained, char *err, size_t errlen);

/* load_constraints - the constraints the CA on disk was issued with (for the tools, which take it as it is). */
static void load_constraints(struct ca *ca)
{
	char path[1100], err[200], *text = NULL, *p, *comma;
	size_t len;

	snprintf(path, sizeof(path), "%s/ca.constraints", ca->dir);
	if (file_read_all(path, CA_MAX_CONSTRAINTS * 256, &text, &len, err, sizeof(err)) < 0)
		return;
	text[strcspn(text, "\r\n")] = '\0';
	for (p = text; *p && ca->n_permitted < CA_MAX_CONSTRAINTS; p = comma + 1) {
		comma = strchr(p, ',');
		if (comma != NULL)
			*comma = '\0';
		if (*p != '\0' && strlen(p) < sizeof(ca->permitted[0]))
			snprintf(ca->permitted[ca->n_permitted++], sizeof(ca->permitted[0]), "%s", p);
		if (comma == NULL)
			break;
	}
	free(text);
}

void ca_constraints(const struct ca *ca, char *buf, size_t len)
{
	constraints_text(ca, buf, len);
}

int ca_open(const char *state_dir, int create, struct ca **out, char *err, size_t errlen)
{
	struct ca *ca = calloc(1, sizeof(*ca));

	if (ca == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (ca_open_impl(ca, state_dir, create, 0, err, errlen) < 0) {
		ca_free(ca);
		return -1;
	}
	*out = ca;
	return 0;
}

int ca_open_constrained(const char *state_dir, const char *const *permitted, size_t n_permitted, struct ca **out,
			char *err, size_t errlen)
{
	struct ca *ca = calloc(1, sizeof(*ca));
	size_t i;

	if (ca == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (n_permitted > CA_MAX_CONSTRAINTS) {
		snprintf(err, errlen, "at most %d name constraints", CA_MAX_CONSTRAINTS);
		free(ca);
		return -1;
	}
	for (i = 0; i < n_permitted; i++) {
		size_t n = strlen(permitted[i]);
		if (n == 0 || n >= sizeof(ca->permitted[0])) {
			snprintf(err, errlen, "bad name constraint \"%s\"", permitted[i]);
			free(ca);
			return -1;
		}
		snprintf(ca->permitted[i], sizeof(ca->permitted[i]), "%s", permitted[i]);
	}
	ca->n_permitted = n_permitted;
	if (ca_open_impl(ca, state_dir, 1, 1, err, errlen) < 0) {
		ca_free(ca);
		return -1;
	}
	*out = ca;
	return 0;
}

int ca_permits(const struct ca *ca, const char *name)
{
	size_t i, n = strlen(name), k;
	uint8_t ip[16];

	if (ca->n_permitted == 0)
		return 1;
	/* dNSName constraints do not bind IP addresses: with constraints, no leaf for an IP literal is minted. */
	if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1)
		return 0;
	for (i = 0; i < ca->n_permitted; i++) {
		k = strlen(ca->permitted[i]);
		if (n == k && strcasecmp(name, ca->permitted[i]) == 0)
			return 1;
		if (n > k && name[n - k - 1] == '.' && strcasecmp(name + n - k, ca->permitted[i]) == 0)
			return 1;
	}
	return 0;
}

/*
 * ca_open_impl - load or create; constrained: the caller's constraints are authoritative (the proxy), else the
 * CA is taken as it is (the ca tools).
 */
static int ca_open_impl(struct ca *ca, const char *state_dir, int create, int constrained, char *err, size_t errlen)
{
	char ca_key_path[1024], leaf_key_path[1024], *pem = NULL;
	size_t len;
	int der_len, exists;
	long days;

	snprintf(ca->dir, sizeof(ca->dir), "%s", state_dir);
	snprintf(ca->cert_path, sizeof(ca->cert_path), "%s/ca.pem", ca->dir);
	snprintf(ca_key_path, sizeof(ca_key_path), "%s/ca.key", ca->dir);
	snprintf(leaf_key_path, sizeof(leaf_key_path), "%s/leaf.key", ca->dir);
	if (wc_InitRng(&ca->rng) != 0) {
		snprintf(err, errlen, "cannot initialise the random generator");
		goto fail;
	}
	ca->rng_ok = 1;
	if (wc_ecc_init(&ca->ca_key) != 0 || wc_ecc_init(&ca->leaf_key) != 0) {
		snprintf(err, errlen, "cannot initialise keys");
		goto fail;
	}
	ca->ca_key_ok = ca->leaf_key_ok = 1;
	if (create && mkdir_p(ca->dir, err, errlen) < 0)
		goto fail;
	/* "Cannot tell" (a state directory we may not search) is an error, never "missing": creating a CA there would
	 * fail half-way or, worse, replace one. */
	if ((exists = file_exists(ca_key_path, err, errlen)) < 0)
		goto fail;
	if (!exists) {
		if (!create) {
			snprintf(err, errlen, "no CA in %s yet (it is created when the proxy first starts)", ca->dir);
			goto fail;
		}
		if (key_generate_and_save(ca, &ca->ca_key, ca_key_path, err, errlen) < 0)
			goto fail;
		unlink(ca->cert_path);
	} else if (key_load(&ca->ca_key, ca_key_path, NULL, NULL, err, errlen) < 0) {
		goto fail;
	}
	if ((exists = file_exists(leaf_key_path, err, errlen)) < 0)
		goto fail;
	if (!exists) {
		if (!create) {
			snprintf(err, errlen, "%s missing", leaf_key_path);
			goto fail;
		}
		if (key_generate_and_save(ca, &ca->leaf_key, leaf_key_path, err, errlen) < 0)
			goto fail;
	}
	ca->leaf_key_len = sizeof(ca->leaf_key_der);
	wc_ecc_free(&ca->leaf_key);
	wc_ecc_init(&ca->leaf_key);
	if (key_load(&ca->leaf_key, leaf_key_path, ca->leaf_key_der, &ca->leaf_key_len, err, errlen) < 0)
		goto fail;
	if (!constrained)
		load_constraints(ca);
	if ((exists = file_exists(ca->cert_path, err, errlen)) < 0)
		goto fail;
	if (exists) {
		if (file_read_all(ca->cert_path, 65536, &pem, &len, err, errlen) < 0)
			goto fail;
		der_len = wc_CertPemToDer((const unsigned char *)pem, (int)len, ca->cert, sizeof(ca->cert), CERT_TYPE);
		free(pem);
		if (der_len <= 0) {
			snprintf(err, errlen, "%s: not a PEM certificate", ca->cert_path);
			goto fail;
		}
		ca->cert_len = (size_t)der_len;
		days = cert_days_left(ca->cert, ca->cert_len);
		if (constrained && days >= CA_RENEW_DAYS && constraints_changed(ca)) {
			fprintf(stderr, "daneproxy: warning: the local CA %s was issued with other name constraints: issuing a "
					"new one (same key); re-export it with `daneproxy ca export` and reinstall it in "
					"clients\n",
				ca->cert_path);
			if (make_ca_cert(ca, err, errlen) < 0 || save_constraints(ca, err, errlen) < 0)
				goto fail;
			ca->renewed = 1;
		}
		if (days < CA_RENEW_DAYS) {
			if (!create) {
				snprintf(err, errlen, "the CA in %s %s", ca->dir,
					 days < 0 ? "has expired" : "expires within 30 days; start the proxy to renew it");
				if (days < 0)
					goto fail;
			} else {
				fprintf(stderr,
					"daneproxy: warning: the local CA %s %s: issuing a new one (same key); "
					"re-export it with `daneproxy ca export` and reinstall it in clients\n",
					ca->cert_path, days < 0 ? "has expired" : "expires within 30 days");
				if (make_ca_cert(ca, err, errlen) < 0 || save_constraints(ca, err, errlen) < 0)
					goto fail;
				ca->renewed = 1;
			}
		}
	} else {
		if (!create) {
			snprintf(err, errlen, "%s missing", ca->cert_path);
			goto fail;
		}
		if (make_ca_cert(ca, err, errlen) < 0 || save_constraints(ca, err, errlen) < 0)
			goto fail;
		ca->renewed = 1;
	}
	return 0;
fail:
	return -1;
}

void ca_free(struct ca *ca)
{
	if (ca == NULL)
		return;
	if (ca->ca_key_ok)
		wc_ecc_free(&ca->ca_key);
	if (ca->leaf_key_ok)
		wc_ecc_free(&ca->leaf_key);
	if (ca->rng_ok)
		wc_FreeRng(&ca->rng);
	/* Key material leaves memory with the struct. */
	memset(ca->leaf_key_der, 0, sizeof(ca->leaf_key_der));
	free(ca);
}

const uint8_t *ca_cert_der(const struct ca *ca, size_t *len)
{
	*len = ca->cert_len;
	return ca->cert;
}

const uint8_t *ca_leaf_key_der(const struct ca *ca, size_t *len)
{
	*len = ca->leaf_key_len;
	return ca->leaf_key_der;
}

const char *ca_cert_path(const struct ca *ca)
{
	return ca->cert_path;
}

int ca_renewed(const struct ca *ca)
{
	return ca->renewed;
}

/* san_der - GeneralNames with one dNSName [2] or iPAddress [7]; the only DER built by hand (wolfCrypt takes it
 * ready-made). Returns the length or -1. */
static int san_der(const char *name, uint8_t *out, size_t cap)
{
	uint8_t ip[16];
	size_t n, inner;
	int tag = 0x82;
	const uint8_t *value = (const uint8_t *)name;

	n = strlen(name);
	if (inet_pton(AF_INET, name, ip) == 1) {
		tag = 0x87;
		value = ip;
		n = 4;
	} else if (inet_pton(AF_INET6, name, ip) == 1) {
		tag = 0x87;
		value = ip;
		n = 16;
	}
	if (n == 0 || n > 253)
		return -1;
	inner = 2 + n + (n >= 128 ? 1 : 0);
	if (inner + 4 > cap)
		return -1;
	/* SEQUENCE { [tag] value } with short or one-byte long lengths (names are at most 253 bytes). */
	out[0] = 0x30;
	if (inner < 128) {
		out[1] = (uint8_t)inner;
		out += 2;
	} else {
		out[1] = 0x81;
		out[2] = (uint8_t)inner;
		out += 3;
	}
	out[0] = (uint8_t)tag;
	if (n < 128) {
		out[1] = (uint8_t)n;
		memcpy(out + 2, value, n);
	} else {
		out[1] = 0x81;
		out[2] = (uint8_t)n;
		memcpy(out + 3, value, n);
	}
	return (int)(inner + (inner < 128 ? 2 : 3));
}

int ca_mint(struct ca *ca, const char *name, uint8_t **der, size_t *len, char *err, size_t errlen)
{
	Cert *cert = NULL;
	uint8_t *buf = NULL;
	int san_len, n;

	*der = NULL;
	cert = malloc(sizeof(*cert));
	buf = malloc(CA_DER_MAX);
	if (cert == NULL || buf == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (wc_InitCert(cert) != 0)
		goto lib_fail;
	cert->sigType = CTC_SHA256wECDSA;
	cert->daysValid = CA_LEAF_VALIDITY_DAYS;
	snprintf(cert->subject.commonName, CTC_NAME_SIZE, "%.63s", name);
	snprintf(cert->subject.org, CTC_NAME_SIZE, "daneproxy (DANE-verified origin)");
	san_len = san_der(name, cert->altNames, sizeof(cert->altNames));
	if (san_len < 0) {
		snprintf(err, errlen, "cannot put \"%s\" in a certificate", name);
		goto fail;
	}
	cert->altNamesSz = san_len;
	if (wc_SetIssuerBuffer(cert, ca->cert, (int)ca->cert_len) != 0 ||
	    wc_SetAuthKeyIdFromCert(cert, ca->cert, (int)ca->cert_len) != 0 ||
	    wc_SetSubjectKeyIdFromPublicKey_ex(cert, ECC_TYPE, &ca->leaf_key) != 0 ||
	    wc_SetKeyUsage(cert, "digitalSignature") != 0 || wc_SetExtKeyUsage(cert, "serverAuth") != 0)
		goto lib_fail;
	n = wc_MakeCert_ex(cert, buf, CA_DER_MAX, ECC_TYPE, &ca->leaf_key, &ca->rng);
	if (n <= 0)
		goto lib_fail;
	n = wc_SignCert_ex(cert->bodySz, cert->sigType, buf, CA_DER_MAX, ECC_TYPE, &ca->ca_key, &ca->rng);
	if (n <= 0)
		goto lib_fail;
	free(cert);
	*der = buf;
	*len = (size_t)n;
	return 0;
lib_fail:
	snprintf(err, errlen, "certificate generation failed for \"%s\"", name);
fail:
	free(cert);
	free(buf);
	return -1;
}
