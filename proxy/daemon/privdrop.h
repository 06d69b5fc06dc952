/*
 * privdrop.h - giving up root: started as root outside a service manager, the daemon binds its listeners and
 * reads its keys, then becomes [proxy] user (its uid, primary gid and supplementary groups, real, effective and
 * saved) and checks that root cannot come back. The account is looked up first, before anything is bound, so a
 * missing user costs nothing; the switch itself is system calls only.
 */
#ifndef DANEPROXY_PRIVDROP_H
#define DANEPROXY_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

#define PRIVDROP_MAX_GROUPS 64
#define PRIVDROP_MSG_MAX 400          /* a message buffer of this size always holds the whole line */

/* The account to become, as privdrop_lookup found it. */
struct privdrop {
	char name[33];
	uid_t uid;
	gid_t gid;                        /* the primary group */
	gid_t groups[PRIVDROP_MAX_GROUPS];   /* supplementary groups, the primary one included */
	size_t n_groups;
};

enum privdrop_result {
	PRIVDROP_DROPPED,        /* was root; now the account's uid/gids everywhere, no capabilities, no way back */
	PRIVDROP_NOT_ROOT,       /* not started as root (systemd's DynamicUser=/User=, a login shell): nothing done */
	PRIVDROP_ROOT_NO_USER,   /* root and no account configured: still root (the caller logs msg as a warning) */
	PRIVDROP_FAILED,         /* a step failed or a check after it did: the caller must exit */
};

/*
 * privdrop_lookup - resolve name to its uid, gid and groups (through NSS, so call it before binding, while
 * /etc is readable). -1 with the reason in err for an unknown account, one with uid 0, or too many groups.
 */
int privdrop_lookup(const char *name, struct privdrop *pd, char *err, size_t errlen);

/*
 * privdrop_apply - become pd (NULL: no account configured). Only root switches; every outcome writes one line
 * for the log into msg. Sets no_new_privs after a switch. On PRIVDROP_FAILED the process may be half-switched.
 */
enum privdrop_result privdrop_apply(const struct privdrop *pd, char *msg, size_t msglen);

/*
 * privdrop_check_dir - will dir still be usable once the process is pd? The directory and every entry directly
 * in it must be owned by pd's uid (a reload re-reads the CA there as that user). 0, or -1 with a warning that
 * says what to chown in msg. Call it as root once the CA is open (the directory exists), before privdrop_apply.
 */
int privdrop_check_dir(const struct privdrop *pd, const char *dir, char *msg, size_t msglen);

#endif
