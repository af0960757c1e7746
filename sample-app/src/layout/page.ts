/** The pages of the sample app, in nav order; `key` is what a view model's `page` names. */
export const PAGES = [
  { key: 'home', href: '/', label: 'Home' },
  { key: 'about', href: '/about', label: 'About' },
  { key: 'customers', href: '/customers', label: 'Customers' },
  { key: 'customers-create', href: '/customers/create', label: 'New customer' },
  { key: 'customers-peek', href: '/customers/peek', label: 'Peek' },
  { key: 'customers-keep', href: '/customers/keep', label: 'Keep' },
  { key: 'cart', href: '/cart', label: 'Cart' },
  { key: 'prefs', href: '/prefs/edit', label: 'Preferences' },
  { key: 'account', href: '/account', label: 'Account' },
  { key: 'counter', href: '/counter', label: 'Counter' },
] as const;

export type PageKey = (typeof PAGES)[number]['key'];

export interface NavLink {
  readonly href: string;
  readonly label: string;
  readonly current: boolean;
}

/** What every view gets: the `<title>` and the nav with the current page marked (see views/layout.hbs). */
export interface PageModel {
  readonly title: string;
  readonly nav: readonly NavLink[];
}

/** Builds a view model: `page(key, title, { ...values })`; `undefined` for a page outside the nav (an error page). */
export function page<T extends object>(key: PageKey | undefined, title: string, values: T): PageModel & T {
  return {
    title,
    nav: PAGES.map((p) => ({ href: p.href, label: p.label, current: p.key === key })),
    ...values,
  };
}
