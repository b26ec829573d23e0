package smtptls_test

import (
	"bufio"
	"context"
	"net"
	"testing"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/smtptls"
)

// TestProbeGreetsWithTheScannersName: mail operators see who is calling.
func TestProbeGreetsWithTheScannersName(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				c.Write([]byte("220 mx.lab.nhs.uk ESMTP\r\n"))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				got <- line
				c.Write([]byte("250 mx.lab.nhs.uk\r\n")) // no STARTTLS
			}(c)
		}
	}()
	env := labEnv(t, ln.Addr().String(), nil)
	env.EHLOName = "scanner.posture.nhs.uk"
	if _, err := smtptls.Check().Collect(context.Background(), env, check.Asset{Kind: check.KindMail, Name: mx}); err != nil {
		t.Logf("collect: %v", err)
	}
	select {
	case line := <-got:
		if line != "EHLO scanner.posture.nhs.uk\r\n" {
			t.Fatalf("greeting %q, want EHLO scanner.posture.nhs.uk", line)
		}
	default:
		t.Fatal("the probe never greeted the server")
	}
}
