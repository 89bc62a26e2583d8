/* commands.h - the subcommands of the errgate binary.
 *
 * Each takes the arguments after its name (argv[0] is the subcommand name)
 * and returns the process exit status. Exit codes shared by all commands:
 */
#ifndef EG_COMMANDS_H
#define EG_COMMANDS_H

#define EG_EXIT_OK 0
#define EG_EXIT_USAGE 2   /* bad arguments */
#define EG_EXIT_INPUT 3   /* bad input (unparsable body, bad file) */
#define EG_EXIT_NOT_FOUND 4 /* errgate keys: no such key */
#define EG_EXIT_LISTEN      4 /* errgate serve: an address cannot be listened on */
#define EG_EXIT_UNAVAILABLE 69 /* the store cannot be opened or read */
#define EG_EXIT_SOFTWARE 70 /* internal failure (out of memory) */

int eg_cmd_translate(int argc, char **argv);
int eg_cmd_docs(int argc, char **argv);
int eg_cmd_catalog(int argc, char **argv);
int eg_cmd_call(int argc, char **argv);
int eg_cmd_serve(int argc, char **argv);
int eg_cmd_check_config(int argc, char **argv);
int eg_cmd_demo_upstream(int argc, char **argv);
int eg_cmd_keys(int argc, char **argv);
int eg_cmd_validate(int argc, char **argv);
int eg_cmd_alerts(int argc, char **argv);
int eg_cmd_usage(int argc, char **argv);

#endif
