// rdma: linux.resources.rdma -> one rdma.max line per device (v1 and v2 alike).
import type { Controller } from "../controller";

export const rdma: Controller = {
  name: "rdma",
  setting: "linux.resources.rdma",
  needed: (r) => Object.keys(r.rdma ?? {}).length > 0,
  apply: (w, r) => {
    for (const [device, l] of Object.entries(r.rdma!)) {
      let line = device;
      if (l.hcaHandles !== undefined) line += ` hca_handle=${l.hcaHandles}`;
      if (l.hcaObjects !== undefined) line += ` hca_object=${l.hcaObjects}`;
      w.write(`linux.resources.rdma.${device}`, "rdma.max", line);
    }
  },
};
