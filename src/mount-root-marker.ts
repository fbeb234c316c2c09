/**
 * The file the driver writes into its mount root: every direct child of a directory holding it is
 * a sharedprop volume's mount point. The runtime wrapper looks for it; this module imports
 * nothing, so the wrapper's binary does not pull in the driver.
 */
export const MOUNT_ROOT_MARKER = '.sharedprop-mountroot';
