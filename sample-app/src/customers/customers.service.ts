import { Injectable } from '@nestjs/common';

export interface Customer {
  readonly id: number;
  readonly name: string;
  readonly createdAt: Date;
}

/** The seed's in-memory customer database: shared by every visitor of this instance, gone on restart. */
@Injectable()
export class CustomersService {
  private readonly customers: Customer[] = [];
  private nextId = 1;

  add(name: string): Customer {
    const customer: Customer = { id: this.nextId++, name, createdAt: new Date() };
    this.customers.push(customer);
    return customer;
  }

  list(): readonly Customer[] {
    return this.customers;
  }
}
