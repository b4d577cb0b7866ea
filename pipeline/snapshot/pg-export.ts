import { ReplicationConnection } from '../../connectors/postgres/replication-stream.js';
import { formatLsn } from '../../connectors/postgres/lsn.js';

/**
 * A new logical slot with its exported snapshot, for snapshots started outside the connector
 * (`cdc snapshot --initial`, the benchmark, tests). The connector itself offers the same through
 * its `onSlotCreated` hook. The snapshot stays importable until `release()`: keep it open until
 * every chunk job has started its transaction.
 */
export interface ExportedSnapshot {
  slotName: string;
  snapshotName: string;
  consistentPoint: string;
  release(): Promise<void>;
}

export async function createSlotWithSnapshot(url: string, slot: string): Promise<ExportedSnapshot> {
  const repl = await ReplicationConnection.open(url, 'cdc-snapshot-export');
  try {
    const created = await repl.createSlot(slot, true);
    if (!created.snapshotName) throw new Error('the server exported no snapshot');
    return { slotName: created.slotName, snapshotName: created.snapshotName, consistentPoint: formatLsn(created.consistentPoint), release: () => repl.close() };
  } catch (err) {
    await repl.close();
    throw err;
  }
}
