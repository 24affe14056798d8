/* placeholder: faultfs shim, being written */
int faultfs_placeholder(void);
int faultfs_placeholder(void) { return 0; }
