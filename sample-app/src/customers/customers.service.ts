import { Injectable } from '@nestjs/common';
import type { Session } from 'nest-session-state';

export interface Customer {
  readonly id: number;
  readonly name: string;
  /** ISO 8601. */
  readonly createdAt: string;
}

/** The session key of the visitor's customers (one JSON value). */
export const CUSTOMERS_KEY = 'customers';
/** Customers one visitor may add: the list rides in the session and on every page. */
export const MAX_CUSTOMERS = 20;

/**
 * The seed's customer database, kept per visitor in the session: what one anonymous client adds is
 * never shown to another, and no client can grow it past {@link MAX_CUSTOMERS}.
 */
@Injectable()
export class CustomersService {
  /** Adds a customer; undefined when the visitor has {@link MAX_CUSTOMERS} already. */
  add(session: Session, name: string): Customer | undefined {
    const customers = this.list(session);
    if (customers.length >= MAX_CUSTOMERS) return undefined;
    const customer: Customer = {
      id: (customers.at(-1)?.id ?? 0) + 1,
      name,
      createdAt: new Date().toISOString(),
    };
    session.set(CUSTOMERS_KEY, [...customers, customer]);
    return customer;
  }

  list(session: Session): readonly Customer[] {
    return session.get<Customer[]>(CUSTOMERS_KEY) ?? [];
  }
}
