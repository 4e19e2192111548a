import { BrokerError } from '../errors.js';
import type { Connection } from './connections.js';

/**
 * The configured connections, looked up by id. Every service, adapter and the CLI ask here, so an
 * unknown id is the same 404 `unknown_connection` wherever it comes from.
 */
export class ConnectionCatalog {
  private readonly byId: ReadonlyMap<string, Connection>;

  constructor(connections: Iterable<Connection>) {
    this.byId = new Map([...connections].map((c) => [c.id, c]));
  }

  /** The connection, or 404 `unknown_connection`. */
  get(id: string): Connection {
    const connection = this.byId.get(id);
    if (!connection) {
      throw new BrokerError('unknown_connection', `There is no connection "${id}".`, { connectionId: id });
    }
    return connection;
  }

  get size(): number {
    return this.byId.size;
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  all(): Connection[] {
    return [...this.byId.values()];
  }
}
