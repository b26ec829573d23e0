package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/nhsx/posture/scanner/lab"
)

// need finds an external program; missing, the test skips loudly, or
// fails when env CI is set.
func need(t *testing.T, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed (apt-get install %s): this deployment check cannot run", prog, pkg)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " and CI is set")
		}
		t.Skip("SKIP LOUDLY: " + msg)
	}
	return p
}

// unit is a systemd unit file: section → key → values in order (a key can
// repeat, as ExecStart= in a oneshot and SystemCallFilter= do).
type unit map[string]map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	sec := ""
	var cont strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasSuffix(line, "\\") { // a continued line
			cont.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		if cont.Len() > 0 {
			line = cont.String() + line
			cont.Reset()
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			sec = strings.Trim(line, "[]")
			u[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || sec == "" {
				t.Fatalf("%s: not a key=value in a section: %q", path, line)
			}
			u[sec][k] = append(u[sec][k], strings.Join(strings.Fields(v), " "))
		}
	}
	return u
}

func (u unit) get(sec, key string) string {
	vs := u[sec][key]
	if len(vs) == 0 {
		return "<unset>"
	}
	return vs[len(vs)-1]
}

// hardening is what every posture service unit sets, exactly.
var hardening = map[string]string{
	"DynamicUser": "yes", "StateDirectory": "posture", "StateDirectoryMode": "0700", "UMask": "0077",
	"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
	"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
	"ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
	"ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes", "ProtectProc": "invisible",
	"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes",
	"RestrictRealtime": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
	"SystemCallArchitectures": "native", "MemoryMax": "2G",
	// HOME is writable: nuclei's libraries write ~/.config and ~/.cache.
	"Environment": "HOME=/var/lib/posture",
}

var services = []string{"systemd/posture-serve.service", "systemd/posture-scan.service"}

func TestSystemdServicesAreHardened(t *testing.T) {
	for _, s := range services {
		u := readUnit(t, s)
		for k, want := range hardening {
			if got := u.get("Service", k); got != want {
				t.Errorf("%s: %s=%q, want %q", s, k, got, want)
			}
		}
		if f := u["Service"]["SystemCallFilter"]; !slices.Contains(f, "@system-service") || !slices.Contains(f, "~@privileged") {
			t.Errorf("%s: SystemCallFilter=%q, want @system-service and ~@privileged", s, f)
		}
		if w := u.get("Unit", "Wants"); w != "network-online.target" {
			t.Errorf("%s: Wants=%q: a scan needs the network up", s, w)
		}
		for _, cmd := range u["Service"]["ExecStart"] {
			if !strings.Contains(cmd, "--db /var/lib/posture/posture.db") {
				t.Errorf("%s: %q: the database must be in the StateDirectory (the rest of the system is read-only)", s, cmd)
			}
		}
	}
	scan := readUnit(t, "systemd/posture-scan.service")
	var verbs []string
	for _, cmd := range scan["Service"]["ExecStart"] {
		verbs = append(verbs, strings.Fields(cmd)[1])
	}
	if scan.get("Service", "Type") != "oneshot" || !slices.Equal(verbs, []string{"scan", "notify"}) {
		t.Errorf("posture-scan.service: Type=%s running %v, want a oneshot running scan then notify", scan.get("Service", "Type"), verbs)
	}
	timer := readUnit(t, "systemd/posture-scan.timer")
	if timer.get("Timer", "Unit") != "posture-scan.service" || timer.get("Timer", "Persistent") != "true" || timer.get("Timer", "OnCalendar") == "<unset>" {
		t.Errorf("posture-scan.timer: %v, want OnCalendar, Persistent=true and Unit=posture-scan.service", timer["Timer"])
	}
}

// TestSystemdUnitsVerify runs systemd-analyze verify on the units (their
// /usr/local/bin/posture pointed at an executable that exists: verify
// checks it), and rates each service's exposure offline: 2.0 at most
// ("OK" is below 4.0 on systemd's scale of 10).
func TestSystemdUnitsVerify(t *testing.T) {
	sa := need(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range append(services, "systemd/posture-scan.timer") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte("/usr/local/bin/posture"), []byte(exe)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(sa, append([]string{"verify", "--man=no"}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, p := range paths[:len(services)] {
		out, err := exec.Command(sa, "security", "--offline=yes", "--threshold=20", "--no-pager", p).CombinedOutput()
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
		if err != nil || m == nil {
			t.Errorf("systemd-analyze security %s: %v (threshold 2.0)\n%s", filepath.Base(p), err, tail(out))
			continue
		}
		t.Logf("%s: exposure %s", filepath.Base(p), m[1])
	}
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}

// manifests reads every YAML document of the Kubernetes files.
func manifests(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	files, _ := filepath.Glob("k8s/*.yaml")
	if len(files) < 3 {
		t.Fatalf("Kubernetes manifests: %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			kind, _ := doc["kind"].(string)
			out[kind] = doc
		}
	}
	return out
}

// at walks a decoded YAML value by keys and list indexes.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestKubernetesManifestsAreHardened(t *testing.T) {
	ms := manifests(t)
	pvc := at(ms["PersistentVolumeClaim"], "metadata", "name")
	cron, dep := ms["CronJob"], ms["Deployment"]
	if cron == nil || dep == nil || pvc == nil {
		t.Fatalf("want a CronJob, a Deployment and a PersistentVolumeClaim, got %v", keys(ms))
	}
	if at(cron, "spec", "concurrencyPolicy") != "Forbid" {
		t.Errorf("CronJob concurrencyPolicy = %v, want Forbid (one writer of the database)", at(cron, "spec", "concurrencyPolicy"))
	}
	if at(dep, "spec", "replicas") != 1 || at(dep, "spec", "strategy", "type") != "Recreate" {
		t.Errorf("Deployment: replicas %v, strategy %v; want 1 and Recreate (one writer)", at(dep, "spec", "replicas"), at(dep, "spec", "strategy", "type"))
	}
	for name, pod := range map[string]any{"CronJob": at(cron, "spec", "jobTemplate", "spec", "template", "spec"), "Deployment": at(dep, "spec", "template", "spec")} {
		sc := at(pod, "securityContext")
		if at(sc, "runAsNonRoot") != true || at(sc, "seccompProfile", "type") != "RuntimeDefault" || at(sc, "runAsUser") == 0 {
			t.Errorf("%s pod securityContext %v: want runAsNonRoot, a non-zero runAsUser and seccomp RuntimeDefault", name, sc)
		}
		if at(pod, "automountServiceAccountToken") != false {
			t.Errorf("%s: the pod mounts a service account token it does not need", name)
		}
		vols := map[string]any{}
		for _, v := range at(pod, "volumes").([]any) {
			vols[at(v, "name").(string)] = v
		}
		var ctrs []any
		for _, k := range []string{"initContainers", "containers"} {
			if l, ok := at(pod, k).([]any); ok {
				ctrs = append(ctrs, l...)
			}
		}
		if len(ctrs) == 0 {
			t.Fatalf("%s: no containers", name)
		}
		for _, c := range ctrs {
			cn := at(c, "name")
			csc := at(c, "securityContext")
			if at(csc, "readOnlyRootFilesystem") != true || at(csc, "allowPrivilegeEscalation") != false ||
				!slices.Equal(toStrings(at(csc, "capabilities", "drop")), []string{"ALL"}) {
				t.Errorf("%s/%v securityContext %v: want readOnlyRootFilesystem, no privilege escalation, capabilities drop ALL", name, cn, csc)
			}
			if at(c, "resources", "limits", "memory") == nil {
				t.Errorf("%s/%v: no memory limit", name, cn)
			}
			mounts := map[string]string{}
			for _, m := range at(c, "volumeMounts").([]any) {
				mounts[at(m, "mountPath").(string)] = at(m, "name").(string)
			}
			if v := vols[mounts["/data"]]; at(v, "persistentVolumeClaim", "claimName") != pvc {
				t.Errorf("%s/%v: /data is %v, want the PVC %v", name, cn, v, pvc)
			}
			if v := vols[mounts["/tmp"]]; at(v, "emptyDir") == nil {
				t.Errorf("%s/%v: /tmp is %v, want an emptyDir (the root filesystem is read-only)", name, cn, v)
			}
			if !slices.Contains(toStrings(at(c, "args")), "/data/posture.db") {
				t.Errorf("%s/%v: args %v do not put the database on /data", name, cn, at(c, "args"))
			}
		}
	}
	if at(dep, "spec", "template", "spec", "containers", 0, "readinessProbe", "httpGet", "path") != "/readyz" ||
		at(dep, "spec", "template", "spec", "containers", 0, "livenessProbe", "httpGet", "path") != "/healthz" {
		t.Error("Deployment: want a readiness probe on /readyz and a liveness probe on /healthz")
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// dockerfile is the Dockerfile's instructions, continuations joined.
func dockerfile(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		instr, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, [2]string{strings.ToUpper(instr), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func TestDockerfileBuildsStaticAndRunsAsNonroot(t *testing.T) {
	ins := dockerfile(t)
	var froms []string
	final := map[string][]string{} // instructions after the last FROM
	cgoOff := false
	for _, in := range ins {
		switch in[0] {
		case "FROM":
			froms = append(froms, in[1])
			final = map[string][]string{}
		case "ADD":
			t.Errorf("ADD %s: use COPY (ADD fetches URLs and unpacks archives)", in[1])
		}
		if in[0] == "ENV" && strings.Contains(in[1], "CGO_ENABLED=0") && len(froms) == 1 {
			cgoOff = true
		}
		final[in[0]] = append(final[in[0]], in[1])
	}
	if len(froms) < 2 {
		t.Fatalf("FROM %v: want a multi-stage build", froms)
	}
	if !cgoOff {
		t.Error("the build stage does not set CGO_ENABLED=0: the binary would need a C library distroless/static lacks")
	}
	last := froms[len(froms)-1]
	if !strings.HasPrefix(last, "gcr.io/distroless/static") && last != "scratch" {
		t.Errorf("final stage FROM %s: want distroless/static or scratch", last)
	}
	if env := strings.Join(final["ENV"], " "); !strings.Contains(env, "HOME=/data") || !strings.Contains(env, "TMPDIR=/tmp") {
		t.Errorf("final stage ENV %q: want HOME=/data (nuclei's libraries write ~/.config, ~/.cache) and TMPDIR=/tmp, both volumes", env)
	}
	user := final["USER"]
	if len(user) == 0 || strings.HasPrefix(user[len(user)-1], "0") || strings.HasPrefix(user[len(user)-1], "root") {
		t.Errorf("final stage USER %v: want a non-root user", user)
	}
	var vols []string
	for _, v := range final["VOLUME"] {
		var l []string
		if err := json.Unmarshal([]byte(v), &l); err != nil {
			t.Errorf("VOLUME %s: want the JSON form", v)
		}
		vols = append(vols, l...)
	}
	if !slices.Contains(vols, "/data") || !slices.Contains(vols, "/tmp") {
		t.Errorf("VOLUME %v: want /data (the database) and /tmp (scratch) off the read-only root", vols)
	}
	for _, k := range []string{"ENTRYPOINT", "CMD"} {
		var l []string
		if v := final[k]; len(v) != 1 || json.Unmarshal([]byte(v[0]), &l) != nil {
			t.Errorf("%s %v: want one, in exec (JSON) form (signals reach posture, no shell)", k, v)
		}
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("SKIP LOUDLY: no docker client: the image is not built (the Dockerfile was checked by parsing)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, "docker", "info").Run(); err != nil {
		t.Skip("SKIP LOUDLY: no docker daemon answers: the image is not built (the Dockerfile was checked by parsing; even under CI, which has no daemon)")
	}
	out, err := exec.Command("docker", "build", "-q", "-f", "Dockerfile", "-t", "posture-deploy-test", "..").CombinedOutput()
	if err != nil {
		t.Fatalf("docker build: %v\n%s", err, tail(out))
	}
}

// static is the binary as the Dockerfile builds it (CGO_ENABLED=0), built
// once for the tests that need it.
var static struct {
	sync.Once
	path, err string
}

func staticBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: building the static binary takes a minute or more")
	}
	static.Do(func() {
		dir, err := os.MkdirTemp("", "posture-static-*")
		if err != nil {
			static.err = err.Error()
			return
		}
		static.path = filepath.Join(dir, "posture")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", static.path, "../cmd/posture")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			static.err = fmt.Sprintf("CGO_ENABLED=0 go build: %v\n%s", err, out)
		}
	})
	if static.err != "" {
		t.Fatal(static.err)
	}
	return static.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if static.path != "" {
		os.RemoveAll(filepath.Dir(static.path))
	}
	os.Exit(code)
}

// TestStaticBinary: CGO_ENABLED=0 builds (modernc's SQLite is pure Go),
// and the result links nothing at run time.
func TestStaticBinary(t *testing.T) {
	bin := staticBinary(t)
	file := need(t, "file", "file")
	out, err := exec.Command(file, bin).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "statically linked") {
		t.Errorf("file %s: %v: %s, want statically linked", bin, err, out)
	}
	if ldd, err := exec.LookPath("ldd"); err == nil {
		out, _ := exec.Command(ldd, bin).CombinedOutput()
		if !strings.Contains(string(out), "not a dynamic executable") && !strings.Contains(string(out), "statically linked") {
			t.Errorf("ldd %s: %s, want not a dynamic executable", bin, out)
		}
	}
}

// commandLines are the posture command lines of every deployment file.
func commandLines(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, s := range services {
		for i, cmd := range readUnit(t, s)["Service"]["ExecStart"] {
			out[fmt.Sprintf("%s ExecStart %d", s, i)] = joinQuoted(cmd)[1:] // [0] is the binary
		}
	}
	ms := manifests(t)
	for name, pod := range map[string]any{"CronJob": at(ms["CronJob"], "spec", "jobTemplate", "spec", "template", "spec"), "Deployment": at(ms["Deployment"], "spec", "template", "spec")} {
		for _, k := range []string{"initContainers", "containers"} {
			l, _ := at(pod, k).([]any)
			for _, c := range l {
				out[fmt.Sprintf("k8s %s/%v", name, at(c, "name"))] = toStrings(at(c, "args"))
			}
		}
	}
	for _, in := range dockerfile(t) {
		if in[0] == "CMD" {
			var l []string
			json.Unmarshal([]byte(in[1]), &l)
			out["Dockerfile CMD"] = l
		}
	}
	return out
}

// joinQuoted splits a systemd command line into words, "…" kept as one.
func joinQuoted(s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`"[^"]*"|\S+`).FindAllString(s, -1) {
		out = append(out, strings.Trim(m, `"`))
	}
	return out
}

// TestEveryCommandLineParses gives each deployment file's posture command
// line, plus --help, to the binary: a flag that does not exist (or a
// command) fails it with exit 2, as it would fail the service.
func TestEveryCommandLineParses(t *testing.T) {
	bin := staticBinary(t)
	lines := commandLines(t)
	if len(lines) < 6 {
		t.Fatalf("only %d command lines found: %v", len(lines), lines)
	}
	for where, args := range lines {
		if len(args) == 0 {
			t.Errorf("%s: no arguments", where)
			continue
		}
		out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
		if err != nil {
			t.Errorf("%s: posture %s: %v\n%s", where, strings.Join(args, " "), err, tail(out))
		}
	}
}

// TestStaticBinaryWritesOnlyTheDatabaseDirAndTmp runs the static binary as
// the deployments do (HOME is the database's directory: nuclei's
// libraries write ~/.config and ~/.cache when the binary starts; TMPDIR
// its own): `posture scan` of a small lab's mail writes nothing outside
// the database directory and leaves TMPDIR, the working directory and the
// configuration as it found them, so a read-only root with /data and /tmp
// volumes is enough.
func TestStaticBinaryWritesOnlyTheDatabaseDirAndTmp(t *testing.T) {
	bin := staticBinary(t)
	l, err := lab.Start(context.Background(), lab.Config{Domains: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	root := t.TempDir()
	data, tmp, cwd, etc := filepath.Join(root, "data"), filepath.Join(root, "tmp"), filepath.Join(root, "cwd"), filepath.Join(root, "etc")
	for _, d := range []string{data, tmp, cwd, etc} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(etc, "estate.yaml"), l.EstateYAML(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "scan", "--db", filepath.Join(data, "posture.db"), "--estate", filepath.Join(etc, "estate.yaml"),
		"--resolver", l.DNSAddr, "--only", "email", "--ct-url", "", "--allow-private", "--dns-timeout", "300ms")
	cmd.Dir = cwd
	cmd.Env = []string{"HOME=" + data, "TMPDIR=" + tmp, "PATH=/nonexistent"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("posture scan: %v\n%s", err, tail(out))
	}
	if !strings.Contains(string(out), "complete") {
		t.Errorf("posture scan did not complete:\n%s", tail(out))
	}
	files := func(dir string) []string {
		var got []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && p != dir && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				got = append(got, rel)
			}
			return nil
		})
		return got
	}
	for dir, want := range map[string][]string{cwd: nil, tmp: nil, etc: {"estate.yaml"}} {
		if got := files(dir); !slices.Equal(got, want) {
			t.Errorf("%s after the scan holds %q, want %q", dir, got, want)
		}
	}
	got := files(data)
	for _, want := range []string{"posture.db", "posture.db.scan.lock", "posture.db.secret-key"} {
		if !slices.Contains(got, want) {
			t.Errorf("the database directory lacks %s: %q", want, got)
		}
	}
	for _, f := range got {
		if !strings.HasPrefix(f, "posture.db") && !strings.HasPrefix(f, ".config/") && !strings.HasPrefix(f, ".cache/") {
			t.Errorf("the database directory holds %s: neither the database's nor HOME's configuration", f)
		}
	}
	t.Logf("the database directory (HOME) after a scan: %q", got)
}
