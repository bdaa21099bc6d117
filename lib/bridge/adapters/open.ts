/** The embedded default network: every ID in the namespace exists; deliveries are logged. */
import type { Logger } from '../../log.js';
import type { NetworkPort, SearchFields, SearchHit } from '../network.js';

/**
 * Every name exists, so a search finds exactly the names it was given: the protocol has one field
 * per kind (the user's or the room's name), whose value is the network id as typed.
 */
const exactly = async (fields: SearchFields): Promise<SearchHit[]> => [...new Set(Object.values(fields))].map((id) => ({ id }));

export function openNetwork(log: Logger): NetworkPort {
  return {
    lookupUser: async (remoteUserId) => ({ displayName: remoteUserId }),
    lookupRoom: async (remoteRoomId) => ({ name: remoteRoomId }),
    searchRooms: exactly,
    searchUsers: exactly,
    // Every room exists and anyone may link it.
    requestLink: async () => ({ approved: true }),
    announceUnlink: async (request) => log.info('unlinked, told the open network', { room: request.room, matrixRoomId: request.matrixRoomId }),
    deliver: async (delivery) => {
      log.info('delivered to the open network', { kind: delivery.kind, delivery: delivery.body });
      return {};
    },
  };
}
