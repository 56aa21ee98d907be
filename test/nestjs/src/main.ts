// A NestJS service consuming sharecount's count-change events (docs/interop.md,
// "Count-change events in a NestJS service"); run by test/e2e/nestjs_events.sh.
// It binds its own queue to the sharecount.updates exchange (every content type),
// keeps the highest version per key, and prints one JSON line per event received.
import 'reflect-metadata';
import { Controller, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MicroserviceOptions, Payload, RmqContext, Transport } from '@nestjs/microservices';

interface ShareCountChanged {
  contentType: string;
  contentId: string;
  shareCount: number;
  delta: number;
  version: number;
  timestamp: string;
}

@Controller()
class ShareCountsController {
  private readonly latest = new Map<string, ShareCountChanged>();

  @EventPattern('share_count_changed')
  onShareCountChanged(@Payload() event: ShareCountChanged, @Ctx() ctx: RmqContext): void {
    const key = `${event.contentType}/${event.contentId}`;
    const known = this.latest.get(key);
    // versions only increase per key: an older event (another bridge's, late) changes nothing
    if (!known || event.version > known.version) this.latest.set(key, event);
    console.log(JSON.stringify({ received: event, current: this.latest.get(key) }));
    ctx.getChannelRef().ack(ctx.getMessage());
  }
}

@Module({ controllers: [ShareCountsController] })
class AppModule {}

async function bootstrap(): Promise<void> {
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(AppModule, {
    transport: Transport.RMQ,
    options: {
      urls: [process.env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672'],
      queue: process.env.EVENTS_QUEUE ?? 'analytics.share-counts',
      queueOptions: { durable: true },
      exchange: 'sharecount.updates', // declared as the bridge does: topic, durable
      exchangeType: 'topic',
      routingKey: '#', // every contentType; or e.g. 'article'
      noAck: false, // acked in the handler
    },
  });
  await app.listen();
  new Logger('events').log('listening');
}

void bootstrap();
