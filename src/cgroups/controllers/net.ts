// net_cls and net_prio (v1 only; a v2-only host drops linux.resources.network with a warning, as runc).
import type { Controller } from "../controller";
import { any, nz } from "../controller";

export const netCls: Controller = {
  name: "net_cls",
  setting: "linux.resources.network.classID",
  needed: (r) => nz(r.network?.classID),
  apply: (w, r) => w.write("linux.resources.network.classID", "net_cls.classid", String(r.network!.classID)),
};

export const netPrio: Controller = {
  name: "net_prio",
  setting: "linux.resources.network.priorities",
  needed: (r) => any(r.network?.priorities),
  apply: (w, r) => {
    for (const p of r.network!.priorities!) w.write("linux.resources.network.priorities", "net_prio.ifpriomap", `${p.name} ${p.priority}`);
  },
};
