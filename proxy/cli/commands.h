/*
 * commands.h - the daneproxy subcommands. Each takes its own argv (argv[0] is the subcommand name)
 * and returns the process exit status documented in its usage text.
 */
#ifndef DANEPROXY_COMMANDS_H
#define DANEPROXY_COMMANDS_H

/* Exit statuses shared by the offline tools. */
enum { EXIT_AUTHENTICATED = 0, EXIT_REFUSED = 1, EXIT_BAD_INPUT = 2 };

int cmd_verify(int argc, char **argv);
int cmd_tlsa(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_ca(int argc, char **argv);

#endif
