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
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include "fileio.h"

#define CA_DER_MAX 4096

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

/* make_ca_cert - a self-signed CA certificate for the CA key, saved as ca.pem. */
static int make_ca_cert(struct ca *ca, char *err, size_t errlen)
{
	Cert cert;
	char host[64], pem[CA_DER_MAX * 2];
	int len, pem_len;

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
	len = wc_SignCert_ex(cert.bodySz, cert.sigType, ca->cert, sizeof(ca->cert), ECC_TYPE, &ca->ca_key, &ca->rng);
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

int ca_open(const char *state_dir, int create, struct ca **out, char *err, size_t errlen)
{
	struct ca *ca = calloc(1, sizeof(*ca));
	char ca_key_path[1024], leaf_key_path[1024], *pem = NULL;
	size_t len;
	int der_len;
	long days;

	if (ca == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
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
	if (access(ca_key_path, F_OK) != 0) {
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
	if (access(leaf_key_path, F_OK) != 0) {
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
	if (access(ca->cert_path, F_OK) == 0) {
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
				if (make_ca_cert(ca, err, errlen) < 0)
					goto fail;
				ca->renewed = 1;
			}
		}
	} else {
		if (!create) {
			snprintf(err, errlen, "%s missing", ca->cert_path);
			goto fail;
		}
		if (make_ca_cert(ca, err, errlen) < 0)
			goto fail;
		ca->renewed = 1;
	}
	*out = ca;
	return 0;
fail:
	ca_free(ca);
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
