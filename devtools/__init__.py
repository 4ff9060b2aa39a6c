"""Developer tooling shared by tests/ and bench/ (not part of the product, not installed): run a module of
library/ in-process the way Ansible would (modules), where the reference stack lives and how to reach it
(stackenv), and the backup directories and database helpers the backup tests and the backup benchmark use
(backups). tests/helpers builds on these; bench/ imports only these, never tests/."""
