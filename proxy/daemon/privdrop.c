/*
 * privdrop.c - from root to [proxy] user: supplementary groups, then gid, then uid (each real, effective and
 * saved), then proof that it held: the ids read back, setuid(0) and setgid(0) refused, no capability left.
 * Order matters: once the uid is gone the groups can no longer be changed.
 */
#include "privdrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int privdrop_lookup(const char *name, struct privdrop *pd, char *err, size_t errlen)
{
	struct passwd pwd, *found = NULL;
	size_t buflen = 16384;
	char *buf;
	int rc, ng;

	memset(pd, 0, sizeof(*pd));
	if (name == NULL || name[0] == '\0' || strlen(name) >= sizeof(pd->name)) {
		snprintf(err, errlen, "user: \"%.40s\" is not a user name", name ? name : "");
		return -1;
	}
	if ((buf = malloc(buflen)) == NULL) {
		snprintf(err, errlen, "user: out of memory");
		return -1;
	}
	rc = getpwnam_r(name, &pwd, buf, buflen, &found);
	if (rc != 0 || found == NULL) {
		snprintf(err, errlen, "user: %s \"%s\"%s%s", rc ? "cannot look up" : "no such user", name, rc ? ": " : "",
			 rc ? strerror(rc) : "");
		free(buf);
		return -1;
	}
	if (found->pw_uid == 0) {
		snprintf(err, errlen, "user: \"%s\" has uid 0: name an unprivileged account", name);
		free(buf);
		return -1;
	}
	snprintf(pd->name, sizeof(pd->name), "%s", name);
	pd->uid = found->pw_uid;
	pd->gid = found->pw_gid;
	free(buf);
	ng = PRIVDROP_MAX_GROUPS;
	if (getgrouplist(pd->name, pd->gid, pd->groups, &ng) < 0) {
		snprintf(err, errlen, "user: \"%s\" is in more than %d groups", name, PRIVDROP_MAX_GROUPS);
		return -1;
	}
	pd->n_groups = (size_t)ng;
	return 0;
}

/* no_capabilities - 1 when the process holds no capability at all (effective and permitted). */
static int no_capabilities(void)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	size_t i;

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return 0;
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].effective != 0 || data[i].permitted != 0)
			return 0;
	return 1;
}

/* verify - the switch held everywhere and cannot be undone; NULL, or what is wrong. */
static const char *verify(const struct privdrop *pd)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg, now[PRIVDROP_MAX_GROUPS + 1];
	int n;

	if (getresuid(&ru, &eu, &su) < 0 || ru != pd->uid || eu != pd->uid || su != pd->uid)
		return "the user ids did not all change";
	if (getresgid(&rg, &eg, &sg) < 0 || rg != pd->gid || eg != pd->gid || sg != pd->gid)
		return "the group ids did not all change";
	n = getgroups(PRIVDROP_MAX_GROUPS + 1, now);
	if (n < 0 || (size_t)n != pd->n_groups || memcmp(now, pd->groups, (size_t)n * sizeof(gid_t)) != 0)
		return "the supplementary groups did not change";
	if (setuid(0) == 0 || seteuid(0) == 0)
		return "setuid(0) still succeeds";
	if (setgid(0) == 0 || setegid(0) == 0)
		return "setgid(0) still succeeds";
	if (!no_capabilities())
		return "capabilities are left";
	return NULL;
}

enum privdrop_result privdrop_apply(const struct privdrop *pd, char *msg, size_t msglen)
{
	const char *why;

	if (geteuid() != 0) {
		if (pd == NULL)
			snprintf(msg, msglen, "running as uid %u", (unsigned)geteuid());
		else if (getuid() == pd->uid && geteuid() == pd->uid)
			snprintf(msg, msglen, "already running as %s (uid %u)", pd->name, (unsigned)pd->uid);
		else
			snprintf(msg, msglen, "not started as root: user = %s has no effect (running as uid %u)", pd->name,
				 (unsigned)geteuid());
		return PRIVDROP_NOT_ROOT;
	}
	if (pd == NULL) {
		snprintf(msg, msglen, "warning: running as root; set [proxy] user = NAME to give up root once the "
				      "listeners are bound (daneproxy.conf(5))");
		return PRIVDROP_ROOT_NO_USER;
	}
	if (setgroups(pd->n_groups, pd->groups) < 0) {
		snprintf(msg, msglen, "user %s: setgroups: %s", pd->name, strerror(errno));
		return PRIVDROP_FAILED;
	}
	if (setresgid(pd->gid, pd->gid, pd->gid) < 0) {
		snprintf(msg, msglen, "user %s: setresgid(%u): %s", pd->name, (unsigned)pd->gid, strerror(errno));
		return PRIVDROP_FAILED;
	}
	if (setresuid(pd->uid, pd->uid, pd->uid) < 0) {
		snprintf(msg, msglen, "user %s: setresuid(%u): %s", pd->name, (unsigned)pd->uid, strerror(errno));
		return PRIVDROP_FAILED;
	}
	if ((why = verify(pd)) != NULL) {
		snprintf(msg, msglen, "user %s: after the switch %s", pd->name, why);
		return PRIVDROP_FAILED;
	}
	/* Nothing exec'd from here on may gain privileges either (setuid binaries, file capabilities). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(msg, msglen, "user %s: PR_SET_NO_NEW_PRIVS: %s", pd->name, strerror(errno));
		return PRIVDROP_FAILED;
	}
	snprintf(msg, msglen, "switched to user %s (uid %u, gid %u, %zu groups); root cannot be regained", pd->name,
		 (unsigned)pd->uid, (unsigned)pd->gid, pd->n_groups);
	return PRIVDROP_DROPPED;
}

int privdrop_check_dir(const struct privdrop *pd, const char *dir, char *msg, size_t msglen)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int dir_bad, fd;
	size_t files_bad = 0;
	char first[64] = "", what[128];

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(msg, msglen, "state directory %s: %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	dir_bad = st.st_uid != pd->uid;
	if ((d = fdopendir(fd)) == NULL) {
		snprintf(msg, msglen, "state directory %s: %s", dir, strerror(errno));
		close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_uid != pd->uid &&
		    files_bad++ == 0)
			snprintf(first, sizeof(first), "%.60s", e->d_name);
	}
	closedir(d);
	if (!dir_bad && files_bad == 0)
		return 0;
	if (dir_bad && files_bad == 0)
		snprintf(what, sizeof(what), "the directory is");
	else if (dir_bad)
		snprintf(what, sizeof(what), "the directory and %zu entries in it are", files_bad);
	else if (files_bad == 1)
		snprintf(what, sizeof(what), "%s is", first);
	else
		snprintf(what, sizeof(what), "%s and %zu more entries are", first, files_bad - 1);
	snprintf(msg, msglen, "state directory %s: %s not owned by %s, who cannot re-read them after the switch "
			      "(chown -R %s: %s)", dir, what, pd->name, pd->name, dir);
	return -1;
}
