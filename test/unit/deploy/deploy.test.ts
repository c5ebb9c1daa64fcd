/**
 * Static checks of deploy/: every YAML parses; compose and Kubernetes manifests are internally
 * consistent (services, ports, volumes, secrets, config maps) and call the CLIs with the flags
 * they take; Dockerfiles copy paths that exist and start the package's bin entries; the systemd
 * unit passes the site-client flags; the certificate script issues certificates the CA verifies.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { parseStudyConfig } from "../../../src/study/config.js";

const ROOT = join(import.meta.dirname, "../../..");
const DEPLOY = join(ROOT, "deploy");
const COORDINATOR_FLAGS = [
  "--config",
  "--host",
  "--port",
  "--cert",
  "--key",
  "--ca",
  "--state",
  "--nats",
  "--dashboard",
];
const SITE_FLAGS = ["--joint", "--data", "--coordinator", "--cert", "--key", "--ca", "--state"];

/**
 * The flags a bin declares (`.option("--x …")` / `.requiredOption("--x …")` in src/cli/<bin>.ts).
 */
function cliFlags(bin: "coordinator" | "site-client"): { all: Set<string>; required: string[] } {
  const text = readFileSync(join(ROOT, "src/cli", `${bin}.ts`), "utf8");
  const all = new Set<string>();
  const required: string[] = [];
  for (const m of text.matchAll(/\.(option|requiredOption)\(\s*"(--[a-z-]+)/g)) {
    all.add(m[2] as string);
    if (m[1] === "requiredOption") required.push(m[2] as string);
  }
  return { all, required };
}

function expectCliAccepts(
  bin: "coordinator" | "site-client",
  used: Map<string, string>,
  where: string,
): void {
  const { all, required } = cliFlags(bin);
  expect(all.size, `${bin} flags parsed from src/cli/${bin}.ts`).toBeGreaterThan(3);
  for (const flag of used.keys()) expect(all, `${where}: ${bin} ${flag}`).toContain(flag);
  for (const flag of required) expect([...used.keys()], `${where}: ${bin} requires ${flag}`).toContain(flag);
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === "string" ? v : String(v));

function files(dir: string, pattern: RegExp): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile() && pattern.test(f));
}

function yamlDocs(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { merge: true });
  const list = Array.isArray(docs) ? docs : [docs];
  for (const d of list) {
    expect(d.errors.map((e) => `${relative(ROOT, file)}: ${e.message}`)).toEqual([]);
  }
  return list.map((d) => obj(d.toJS())).filter((d) => Object.keys(d).length > 0);
}

/** "--flag value" pairs of an argv list. */
function flags(argv: unknown[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = str(argv[i]);
    if (a.startsWith("--")) out.set(a, str(argv[i + 1] ?? ""));
  }
  return out;
}

function under(path: string, mounts: string[]): boolean {
  return mounts.some((m) => path === m || path.startsWith(`${m.replace(/\/$/, "")}/`));
}

describe("deploy/: every YAML parses", () => {
  it("parses", () => {
    const yamls = files(DEPLOY, /\.ya?ml$/);
    expect(yamls.length).toBeGreaterThanOrEqual(7);
    for (const f of yamls) expect(yamlDocs(f).length, relative(ROOT, f)).toBeGreaterThan(0);
  });
});

describe("deploy/compose", () => {
  const compose = yamlDocs(join(DEPLOY, "compose/compose.yaml"))[0] as Obj;
  const services = obj(compose.services);
  const volumes = Object.keys(obj(compose.volumes));
  const mountsOf = (svc: Obj) =>
    arr(svc.volumes).map((v) => {
      const [source, target] = str(v).split(":");
      return { source: source as string, target: target as string };
    });

  it("has NATS with JetStream, the certificate and phantom jobs, the coordinator and three sites", () => {
    expect(Object.keys(services).sort()).toEqual(
      ["certs", "coordinator", "nats", "phantoms", "site-ankle", "site-knee", "site-shoulder"].sort(),
    );
    for (const [name, svc] of Object.entries(services))
      expect(str(obj(svc).image), name).toMatch(/^[a-z0-9./-]+:[\w.-]+$/);
    expect(arr(obj(services.nats).command)).toContain("-js");
    for (const [name, svc] of Object.entries(services)) {
      for (const m of mountsOf(obj(svc))) {
        if (!m.source.startsWith(".")) expect(volumes, `${name} mounts ${m.source}`).toContain(m.source);
        else expect(existsSync(join(DEPLOY, "compose", m.source)), `${name} bind ${m.source}`).toBe(true);
      }
      for (const dep of Object.keys(obj(obj(svc).depends_on)))
        expect(Object.keys(services), `${name} depends on ${dep}`).toContain(dep);
    }
  });

  it("starts the coordinator with the CLI's flags, on the published ports, with its files mounted", () => {
    const c = obj(services.coordinator);
    const f = flags(arr(c.command));
    expect([...f.keys()].sort()).toEqual([...COORDINATOR_FLAGS].sort());
    expectCliAccepts("coordinator", f, "compose");
    expect(f.get("--host")).toBe("0.0.0.0");
    expect(f.get("--port")).toBe("7443");
    expect(f.get("--dashboard")).toBe(":8080");
    expect(arr(c.ports).map(str)).toEqual(["7443:7443", "127.0.0.1:8080:8080"]);
    const nats = new URL(f.get("--nats") as string);
    expect([nats.protocol, nats.hostname, nats.port]).toEqual(["nats:", "nats", "4222"]);
    const targets = mountsOf(c).map((m) => m.target);
    for (const k of ["--config", "--cert", "--key", "--ca"])
      expect(under(f.get(k) as string, targets), k).toBe(true);
    expect(targets).toContain(f.get("--state"));
    // The dashboard listens on all interfaces: it needs its token.
    expect(str(obj(c.environment).FEDJOINT_DASHBOARD_TOKEN)).toMatch(/^\$\{FEDJOINT_DASHBOARD_TOKEN:\?/);
    const healthcheckPort = /8080/.test(readFileSync(join(DEPLOY, "docker/coordinator.Dockerfile"), "utf8"));
    expect(healthcheckPort).toBe(true);
  });

  it("starts each site with the CLI's flags, its own certificate, its own state and the phantom data", () => {
    const issued = arr(obj(services.certs).command).slice(2).map(str);
    const coordinatorPort = flags(arr(obj(services.coordinator).command)).get("--port");
    const states = new Set<string>();
    for (const joint of ["ankle", "knee", "shoulder"]) {
      const s = obj(services[`site-${joint}`]);
      const f = flags(arr(s.command));
      expect([...f.keys()].sort(), joint).toEqual([...SITE_FLAGS].sort());
      expectCliAccepts("site-client", f, `compose site-${joint}`);
      expect(f.get("--joint")).toBe(joint);
      expect(f.get("--coordinator")).toBe(`coordinator:${coordinatorPort}`);
      expect(f.get("--cert")).toBe(`/certs/${joint}-hospital.pem`);
      expect(f.get("--key")).toBe(`/certs/${joint}-hospital.key`);
      expect(issued).toContain(`${joint}-hospital`);
      const mounts = mountsOf(s);
      for (const k of ["--data", "--cert", "--key", "--ca", "--state"])
        expect(
          under(
            f.get(k) as string,
            mounts.map((m) => m.target),
          ),
          `${joint} ${k}`,
        ).toBe(true);
      const state = mounts.find((m) => m.target === f.get("--state"));
      expect(state?.source).toBe(`site-${joint}-state`);
      states.add(state?.source as string);
      expect(str(obj(obj(s.depends_on).coordinator).condition)).toBe("service_healthy");
    }
    expect(states.size).toBe(3);
    // The study config is valid and names exactly the sites (certificate CNs) and joints deployed.
    const config = parseStudyConfig(
      parseYaml(readFileSync(join(DEPLOY, "compose/study.yaml"), "utf8")),
      "compose/study.yaml",
    );
    expect(config.sites.map((x) => `${x.name}:${x.joint}`).sort()).toEqual(
      ["ankle", "knee", "shoulder"].map((j) => `${j}-hospital:${j}`).sort(),
    );
    expect(config.minSites).toBeLessThanOrEqual(3);
    expect(str(arr(obj(services.phantoms).command)[0])).toMatch(
      /fedjoint\.js synth --joint \$\$j --out \/data\/\$\$j/,
    );
  });
});

describe("deploy/k8s", () => {
  const dir = join(DEPLOY, "k8s");
  const docs = files(dir, /\.ya?ml$/)
    .filter((f) => !f.endsWith("kustomization.yaml"))
    .flatMap((f) => yamlDocs(f).map((d) => ({ file: relative(dir, f), doc: d })));
  const byKind = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
  const name = (d: Obj) => str(obj(d.metadata).name);

  it("every object has apiVersion, kind, a name and the fedjoint namespace; kustomization lists every file", () => {
    for (const { file, doc } of docs) {
      expect(typeof doc.apiVersion, file).toBe("string");
      expect(typeof doc.kind, file).toBe("string");
      expect(name(doc), file).toMatch(/^[a-z0-9-]+$/);
      if (doc.kind !== "Namespace")
        expect(str(obj(doc.metadata).namespace), `${file} ${name(doc)}`).toBe("fedjoint");
    }
    const kustomization = yamlDocs(join(dir, "kustomization.yaml"))[0] as Obj;
    expect(arr(kustomization.resources).map(str).sort()).toEqual(
      [...new Set(docs.map((d) => d.file))].sort(),
    );
    expect(byKind("StatefulSet").map(name).sort()).toEqual(["coordinator", "nats"]);
  });

  it("services select pods and target declared container ports; mounts, config maps and probes are consistent", () => {
    const workloads = byKind("StatefulSet");
    const configMaps = byKind("ConfigMap").map(name);
    for (const svc of byKind("Service")) {
      const selector = obj(obj(svc.spec).selector);
      const targets = workloads.filter((w) => {
        const labels = obj(obj(obj(obj(w.spec).template).metadata).labels);
        return Object.entries(selector).every(([k, v]) => labels[k] === v);
      });
      expect(targets.length, name(svc)).toBe(1);
      const pod = obj(obj(obj(targets[0]).spec).template);
      const portNames = arr(obj(pod.spec).containers).flatMap((c) =>
        arr(obj(c).ports).map((p) => str(obj(p).name)),
      );
      for (const p of arr(obj(svc.spec).ports))
        expect(portNames, name(svc)).toContain(str(obj(p).targetPort));
    }
    for (const w of workloads) {
      const spec = obj(w.spec);
      const pod = obj(obj(spec.template).spec);
      const declared = [
        ...arr(pod.volumes).map((v) => str(obj(v).name)),
        ...arr(spec.volumeClaimTemplates).map((v) => name(obj(v))),
      ];
      for (const v of arr(pod.volumes)) {
        const cm = obj(obj(v).configMap);
        if (cm.name !== undefined) expect(configMaps, name(w)).toContain(str(cm.name));
      }
      for (const c of arr(pod.containers)) {
        const container = obj(c);
        expect(str(container.image), name(w)).toMatch(/:[\w.-]+$/);
        const ports = arr(container.ports).map((p) => str(obj(p).name));
        for (const m of arr(container.volumeMounts))
          expect(declared, `${name(w)} mount`).toContain(str(obj(m).name));
        for (const probe of [container.readinessProbe, container.livenessProbe]) {
          expect(ports, `${name(w)} probe`).toContain(str(obj(obj(probe).httpGet).port));
        }
      }
    }
  });

  it("runs the coordinator with the CLI's flags against the NATS service, with its secrets and study config mounted", () => {
    const coord = byKind("StatefulSet").find((w) => name(w) === "coordinator") as Obj;
    const pod = obj(obj(obj(coord.spec).template).spec);
    const container = obj(arr(pod.containers)[0]);
    const f = flags(arr(container.args));
    expect([...f.keys()].sort()).toEqual([...COORDINATOR_FLAGS].sort());
    expectCliAccepts("coordinator", f, "k8s");
    expect(f.get("--host")).toBe("0.0.0.0");
    const nats = new URL(f.get("--nats") as string);
    const natsSvc = byKind("Service").find((s) => name(s) === nats.hostname);
    expect(natsSvc, "--nats host is a Service").toBeDefined();
    expect(arr(obj(natsSvc?.spec).ports).map((p) => String(obj(p).port))).toContain(nats.port);
    const ports = Object.fromEntries(
      arr(container.ports).map((p) => [str(obj(p).name), String(obj(p).containerPort)]),
    );
    expect(ports).toEqual({
      grpc: f.get("--port"),
      dashboard: (f.get("--dashboard") as string).split(":")[1],
    });
    const mounts = arr(container.volumeMounts).map((m) => str(obj(m).mountPath));
    for (const k of ["--config", "--cert", "--key", "--ca", "--state"])
      expect(under(f.get(k) as string, mounts), k).toBe(true);
    const tls = arr(pod.volumes)
      .map(obj)
      .find((v) => v.secret !== undefined);
    expect(str(obj(tls?.secret).secretName)).toBe("fedjoint-coordinator-tls");
    const env = arr(container.env).map(obj);
    expect(env.find((e) => e.name === "FEDJOINT_DASHBOARD_TOKEN")?.valueFrom).toEqual({
      secretKeyRef: { name: "fedjoint-dashboard", key: "token" },
    });
    const studyCm = byKind("ConfigMap").find((c) => name(c) === "fedjoint-study") as Obj;
    const configFile = (f.get("--config") as string).split("/").at(-1) as string;
    expect(Object.keys(obj(studyCm.data))).toContain(configFile);
    const config = parseStudyConfig(parseYaml(str(obj(studyCm.data)[configFile])), "k8s fedjoint-study");
    expect(config.sites).toHaveLength(3);
    const natsSet = byKind("StatefulSet").find((w) => name(w) === "nats") as Obj;
    const natsArgs = arr(obj(arr(obj(obj(obj(natsSet.spec).template).spec).containers)[0]).args).map(str);
    expect(natsArgs).toEqual(["-c", "/etc/nats/nats.conf"]);
    expect(
      str(obj((byKind("ConfigMap").find((c) => name(c) === "nats-config") as Obj).data)["nats.conf"]),
    ).toMatch(/jetstream \{[^}]*store_dir: \/data/);
  });
});

describe("deploy/docker, deploy/systemd, deploy/certs", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string> };

  it("Dockerfiles copy existing paths and start the package's bin entries; the GPU image uses CUDA and tfjs-node-gpu", () => {
    const expected: Record<string, string> = {
      coordinator: "coordinator",
      "site-cpu": "site-client",
      "site-gpu": "site-client",
    };
    for (const [file, bin] of Object.entries(expected)) {
      const text = readFileSync(join(DEPLOY, `docker/${file}.Dockerfile`), "utf8");
      expect(text, file).toMatch(/^FROM /m);
      for (const m of text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
        for (const src of (m[1] as string).split(" "))
          expect(existsSync(join(ROOT, src)), `${file}: COPY ${src}`).toBe(true);
      }
      const entry = /^ENTRYPOINT \[(.*)\]$/m.exec(text)?.[1] ?? "";
      expect(entry, file).toContain(`"/app/${pkg.bin[bin]}"`);
      expect(existsSync(join(DEPLOY, `docker/${file}.Dockerfile.dockerignore`)), file).toBe(true);
    }
    const gpu = readFileSync(join(DEPLOY, "docker/site-gpu.Dockerfile"), "utf8");
    expect(gpu).toMatch(/^ARG CUDA_IMAGE=nvidia\/cuda:[\w.-]+cudnn[\w.-]+$/m);
    expect(gpu).toMatch(/^FROM \$\{CUDA_IMAGE\}$/m);
    expect(gpu).toContain("@tensorflow/tfjs-node-gpu@4.22.0");
    const coordinator = readFileSync(join(DEPLOY, "docker/coordinator.Dockerfile"), "utf8");
    expect(coordinator).toMatch(/^EXPOSE 7443 8080$/m);
  });

  it("the systemd unit runs site-client with every flag, from its environment file", () => {
    const unit = readFileSync(join(DEPLOY, "systemd/fedjoint-site.service"), "utf8");
    const sections = [...unit.matchAll(/^\[(\w+)\]$/gm)].map((m) => m[1]);
    expect(sections).toEqual(["Unit", "Service", "Install"]);
    const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? "";
    expect(exec).toContain(`/opt/fedjoint/${pkg.bin["site-client"]}`);
    const used = flags(exec.split(/\s+/));
    expect([...used.keys()].sort()).toEqual([...SITE_FLAGS].sort());
    expectCliAccepts("site-client", used, "systemd");
    const envFile = readFileSync(join(DEPLOY, "systemd/site.env.example"), "utf8");
    const defined = new Set([...envFile.matchAll(/^(\w+)=/gm)].map((m) => m[1]));
    for (const m of exec.matchAll(/\$\{(\w+)\}/g)) expect(defined, m[1]).toContain(m[1]);
    expect(unit).toMatch(/^StateDirectory=fedjoint$/m);
  });

  it("make-certs.sh issues a CA, a coordinator certificate with its names, and site certificates named by CN", () => {
    const dir = mkdtempSync(join(tmpdir(), "fedjoint-certs-"));
    try {
      execFileSync(
        "bash",
        [join(DEPLOY, "certs/make-certs.sh"), dir, "coordinator,coord.example.org", "knee-hospital"],
        { stdio: "pipe" },
      );
      const verify = execFileSync(
        "openssl",
        ["verify", "-CAfile", "ca.pem", "coordinator.pem", "knee-hospital.pem"],
        { cwd: dir, encoding: "utf8" },
      );
      expect(verify).toBe("coordinator.pem: OK\nknee-hospital.pem: OK\n");
      const san = execFileSync(
        "openssl",
        ["x509", "-in", "coordinator.pem", "-noout", "-ext", "subjectAltName"],
        { cwd: dir, encoding: "utf8" },
      );
      expect(san).toContain("DNS:coordinator, DNS:coord.example.org, IP Address:127.0.0.1");
      const subject = execFileSync("openssl", ["x509", "-in", "knee-hospital.pem", "-noout", "-subject"], {
        cwd: dir,
        encoding: "utf8",
      });
      expect(subject.trim()).toBe("subject=CN = knee-hospital");
      expect(statSync(join(dir, "knee-hospital.key")).mode & 0o777).toBe(0o600);
      expect(() =>
        execFileSync("bash", [join(DEPLOY, "certs/make-certs.sh"), dir, "c", "bad/site"], { stdio: "pipe" }),
      ).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
