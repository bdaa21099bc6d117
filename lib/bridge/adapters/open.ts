/** The embedded default network: every ID in the namespace exists; deliveries are logged. */
import type { Logger } from '../../log.js';
import type { NetworkPort } from '../network.js';

export function openNetwork(log: Logger): NetworkPort {
  return {
    lookupUser: async (remoteUserId) => ({ displayName: remoteUserId }),
    lookupRoom: async (remoteRoomId) => ({ name: remoteRoomId }),
    deliver: async (delivery) => {
      log.info('delivered to the open network', { kind: delivery.kind, delivery: delivery.body });
      return {};
    },
  };
}
