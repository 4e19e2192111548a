/** The status page's rows per page (docs/status-and-rotation.md): the page splits only past this. */
export const STATUS_PAGE_SIZE = 200;
