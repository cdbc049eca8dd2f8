/**
 * Builds an event of the stream: the one place that sets an event's id, schema version and time,
 * so the worker, the producer and the schedule runner cannot drift apart. (`batch.completed` is
 * built inside the publishing script, from the same version constant.)
 */
import { eventIdFor, EVENT_SCHEMA_VERSION, type ZimageEvent } from './events.js';

export type EventOfType<T extends ZimageEvent['type']> = Extract<ZimageEvent, { type: T }>;

/** `subjectId` is what the event is about (job id, batch id, schedule@tick): its id derives from it. */
export function makeEvent<T extends ZimageEvent['type']>(type: T, subjectId: string, data: EventOfType<T>['data'], timestamp: string = new Date().toISOString()): EventOfType<T> {
  return { id: eventIdFor(type, subjectId), version: EVENT_SCHEMA_VERSION, type, timestamp, data } as EventOfType<T>;
}
