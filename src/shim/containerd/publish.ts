// Events to containerd: each one an Envelope forwarded over ttrpc to TTRPC_ADDRESS
// (containerd.services.events.ttrpc.v1.Events/Forward), in order, on one connection made when first needed.
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { AnySchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ForwardRequestSchema } from "./gen/services/ttrpc/events/v1/events_pb";
import { Client } from "./ttrpc";

export class Publisher {
  private client: Client | undefined;
  private chain: Promise<void> = Promise.resolve();
  readonly sent: string[] = []; // topics, for tests

  constructor(
    private readonly namespace: string,
    private readonly address: string | undefined,
  ) {}

  publish<D extends DescMessage>(topic: string, schema: D, init: MessageInitShape<D>): void {
    const event = create(AnySchema, { typeUrl: schema.typeName, value: toBinary(schema, create(schema, init)) });
    const req = create(ForwardRequestSchema, { envelope: { timestamp: timestampFromDate(new Date()), namespace: this.namespace, topic, event } });
    const payload = toBinary(ForwardRequestSchema, req);
    this.sent.push(topic);
    if (!this.address) return;
    const address = this.address;
    this.chain = this.chain.then(async () => {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          if (!this.client || this.client.isClosed) this.client = await Client.connect(address);
          await this.client.call("containerd.services.events.ttrpc.v1.Events", "Forward", payload);
          return;
        } catch (e) {
          this.client?.close();
          this.client = undefined;
          if (attempt === 1) process.stderr.write(`tsrun shim: publish ${topic}: ${e instanceof Error ? e.message : String(e)}\n`);
        }
      }
    });
  }

  // Resolves once every event published so far has been sent (or given up).
  flush(): Promise<void> {
    return this.chain;
  }

  close(): void {
    this.client?.close();
  }
}
