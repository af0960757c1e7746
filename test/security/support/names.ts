/** The library's default cookie names. */
export const SESSION_COOKIE = '.Nest.Session';
export const TEMP_DATA_COOKIE = '.Nest.TempData';
