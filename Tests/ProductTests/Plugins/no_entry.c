/* A shared library named like a plugin but without the entry symbol. */
int not_a_plugin(void) { return 1; }
