package tlscheck_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/tlscheck"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHostTLSCheck runs the full per-host TLS check (tls.protocols and
// tls.cert: collect and evaluate, DNS included) against a loopback server,
// then, in the same run, a loop of bare crypto/tls handshakes with the same
// server, and reports:
//
//	conns/host   connections the prober used for one host
//	budget       K + V + 3 for that host (K accepted suites over V versions)
//	hosts/s      full checks per second, one host at a time
//	cpu-ratio    CPU time of one full check / CPU time of one bare handshake
//
// CPU is the process's (user + system), so it includes the in-process Go
// server's side of every handshake in both loops. For gnutls-serv (an
// external process) only the client's CPU is counted.
func BenchmarkHostTLSCheck(b *testing.B) {
	ca := newCA(b)
	ec := issue(b, ca, tlstest.Leaf{})
	rsa := issue(b, ca, tlstest.Leaf{RSABits: 2048})
	servers := []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"go-tls12-13-ecdsa", func(b *testing.B) string {
			return tlsmust.StartTLS(b, &tls.Config{Certificates: []tls.Certificate{ec.Cert}}).Addr
		}},
		{"gnutls-legacy-rsa", func(b *testing.B) string {
			dir := b.TempDir()
			cf, kf, err := rsa.WritePEM(dir, "rsa")
			if err != nil {
				b.Fatal(err)
			}
			return tlsmust.StartProcess(b, "gnutls-serv", "--port", "{port}", "--x509certfile", cf, "--x509keyfile", kf,
				"--priority", "NORMAL:+ARCFOUR-128:+3DES-CBC:+VERS-TLS1.0:+VERS-TLS1.1", "-a", "-q").Addr
		}},
	}
	for _, s := range servers {
		b.Run(s.name, func(b *testing.B) {
			addr := s.start(b)
			env := labEnv(b, addr, ca.Pool())
			env.DNS.(*dnsq.Resolver).NoCache = true
			protocols, certs := tlscheck.Protocols(), tlscheck.Certificate()
			a := check.Asset{Kind: check.KindHost, Name: host}
			ctx := context.Background()

			var conns, budget int
			b.ResetTimer()
			cpu0, wall0 := cpuTime(), time.Now()
			for i := 0; i < b.N; i++ {
				ev, err := protocols.Collect(ctx, env, a)
				if err != nil {
					b.Fatal(err)
				}
				protocols.Evaluate(ev, policyFor(env))
				if i == 0 {
					var pe tlscheck.ProtocolEvidence
					_ = json.Unmarshal(ev.Data, &pe)
					rep := pe.Scans[0].Report
					conns = rep.Connections
					budget = rep.AcceptedSuites() + rep.AcceptedVersions() + 3
				}
				cev, err := certs.Collect(ctx, env, a)
				if err != nil {
					b.Fatal(err)
				}
				certs.Evaluate(cev, policyFor(env))
			}
			fullCPU, fullWall := cpuTime()-cpu0, time.Since(wall0)
			b.StopTimer()

			cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: host, MinVersion: tls.VersionTLS10}
			cpu1 := cpuTime()
			for i := 0; i < b.N; i++ {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				tc := tls.Client(c, cfg)
				if err := tc.Handshake(); err != nil {
					b.Fatal(err)
				}
				tc.Close()
			}
			bareCPU := cpuTime() - cpu1

			b.ReportMetric(float64(conns), "conns/host")
			b.ReportMetric(float64(budget), "budget")
			b.ReportMetric(float64(b.N)/fullWall.Seconds(), "hosts/s")
			if bareCPU > 0 {
				b.ReportMetric(float64(fullCPU)/float64(bareCPU), "cpu-ratio")
			}
			b.ReportMetric(float64(fullCPU.Microseconds())/float64(b.N), "cpu-µs/host")
			b.ReportMetric(float64(bareCPU.Microseconds())/float64(b.N), "cpu-µs/handshake")
		})
	}
}
