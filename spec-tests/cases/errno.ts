// errno values the cases expect (Linux, all architectures the harness supports).
export const EPERM = 1;
export const ENXIO = 6;
export const ENOTTY = 25;
export const EROFS = 30;
export const EDOM = 33;
export const ENOSYS = 38;
export const EXDEV = 18;
