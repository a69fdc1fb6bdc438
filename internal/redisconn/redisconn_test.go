package redisconn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/internal/redisconn"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/testenv"
)

func TestOptions(t *testing.T) {
	ca := writeCA(t)
	tests := []struct {
		name string
		s    redisconn.Settings
		want asynq.RedisConnOpt
	}{
		{"ACL user and database", redisconn.Settings{URL: "redis://app:s3cret@db.internal:6380/2"},
			asynq.RedisClientOpt{Network: "tcp", Addr: "db.internal:6380", Username: "app", Password: "s3cret", DB: 2}},
		{"password only", redisconn.Settings{URL: "redis://:s3cret@db.internal:6379"},
			asynq.RedisClientOpt{Network: "tcp", Addr: "db.internal:6379", Password: "s3cret"}},
		{"no port", redisconn.Settings{URL: "redis://db.internal"},
			asynq.RedisClientOpt{Network: "tcp", Addr: "db.internal:6379"}},
		{"socket with user", redisconn.Settings{URL: "redis-socket://app:s3cret@/run/redis.sock?db=3"},
			asynq.RedisClientOpt{Network: "unix", Addr: "/run/redis.sock", Username: "app", Password: "s3cret", DB: 3}},
		{"sentinel: the URL's credentials are the master's, the sentinels have their own",
			redisconn.Settings{URL: "redis-sentinel://app:masterpw@s1:26379,s2:26380/1?master=mymaster", SentinelUsername: "sentinel-user", SentinelPassword: "sentinelpw"},
			asynq.RedisFailoverClientOpt{MasterName: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26380"},
				SentinelUsername: "sentinel-user", SentinelPassword: "sentinelpw", Username: "app", Password: "masterpw", DB: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Options()
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("Options()\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}

	t.Run("rediss with a CA: that CA only, the URL's host verified", func(t *testing.T) {
		got, err := redisconn.Settings{URL: "rediss://app:pw@redis.example.com:6380", CACert: ca}.Options()
		if err != nil {
			t.Fatal(err)
		}
		o := got.(asynq.RedisClientOpt)
		if o.TLSConfig == nil || o.TLSConfig.RootCAs == nil || o.TLSConfig.ServerName != "redis.example.com" || o.TLSConfig.InsecureSkipVerify {
			t.Errorf("TLS config %+v: want RootCAs from REDIS_CA_CERT and ServerName redis.example.com", o.TLSConfig)
		}
		if o.Username != "app" {
			t.Errorf("user %q, want app", o.Username)
		}
	})

	bad := []struct {
		name    string
		s       redisconn.Settings
		wantErr string
	}{
		{"not a URL", redisconn.Settings{URL: "db.internal:6379"}, "REDIS_URL"},
		{"unknown scheme", redisconn.Settings{URL: "http://u:s3cret@h"}, `scheme "http"`},
		{"bad database", redisconn.Settings{URL: "redis://u:s3cret@h:6379/x"}, "REDIS_URL"},
		{"sentinel without master", redisconn.Settings{URL: "redis-sentinel://:s3cret@h:26379"}, "master"},
		{"CA for plain redis://", redisconn.Settings{URL: "redis://:s3cret@h", CACert: ca}, "REDIS_CA_CERT is set but REDIS_URL is redis://"},
		{"CA file missing", redisconn.Settings{URL: "rediss://:s3cret@h", CACert: filepath.Join(t.TempDir(), "nope.pem")}, "REDIS_CA_CERT"},
		{"CA file not PEM", redisconn.Settings{URL: "rediss://:s3cret@h", CACert: testenv.WriteFile(t, "x.pem", "not a cert")}, "no PEM certificate"},
		{"sentinel password for plain redis://", redisconn.Settings{URL: "redis://:s3cret@h", SentinelPassword: "x"}, "redis-sentinel:// only"},
	}
	for _, tt := range bad {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			_, err := tt.s.Options()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error reveals the password: %v", err)
			}
		})
	}
}

// ping connects with opt and writes a key, as every refreshq process does.
func ping(opt asynq.RedisConnOpt) error {
	rdb, err := redisconn.Client(opt)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return rdb.Set(ctx, "refreshq:redisconn-test", "1", time.Minute).Err()
}

// TestACLUser: a managed Redis whose default user is off and which has one
// ACL user. asynq's own parser drops the user name and cannot log in.
func TestACLUser(t *testing.T) {
	srv := redistest.StartServer(t, "--user", "default", "off", "--user", "app", "on", ">app-pw", "~*", "&*", "+@all")
	url := "redis://app:app-pw@" + srv.Addr() + "/0"
	opt, err := redisconn.Settings{URL: url}.Options()
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(opt); err != nil {
		t.Errorf("with the ACL user: %v", err)
	}
	old, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(old); err == nil {
		t.Error("asynq.ParseRedisURI logged in too; this test no longer shows why redisconn exists")
	}
}

// TestTLSWithPrivateCA: rediss:// to a server whose certificate a private
// CA signed works with REDIS_CA_CERT and is refused without it.
func TestTLSWithPrivateCA(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeCertChain(t, dir)
	tlsPort := redistest.FreePort(t)
	redistest.StartServer(t, "--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile, "--tls-auth-clients", "no", "--user", "default", "off", "--user", "app", "on", ">app-pw", "~*", "&*", "+@all")
	url := "rediss://app:app-pw@localhost:" + strconv.Itoa(tlsPort)
	opt, err := redisconn.Settings{URL: url, CACert: caFile}.Options()
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(opt); err != nil {
		t.Errorf("rediss:// with REDIS_CA_CERT: %v", err)
	}
	opt, err = redisconn.Settings{URL: url}.Options()
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(opt); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("rediss:// without the CA: %v, want a certificate error", err)
	}
}

// TestSentinelSeparatePasswords: the sentinels and the master each have
// their own credentials.
func TestSentinelSeparatePasswords(t *testing.T) {
	master := redistest.StartServer(t, "--user", "default", "off", "--user", "app", "on", ">master-pw", "~*", "&*", "+@all")
	sentinelAddr := redistest.StartSentinel(t, master, "requirepass sentinel-pw", "sentinel auth-user mymaster app", "sentinel auth-pass mymaster master-pw")

	url := "redis-sentinel://app:master-pw@" + sentinelAddr + "?master=mymaster"
	opt, err := redisconn.Settings{URL: url, SentinelPassword: "sentinel-pw"}.Options()
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(opt); err != nil {
		t.Errorf("through Sentinel with both passwords: %v", err)
	}
	old, err := asynq.ParseRedisURI("redis-sentinel://:sentinel-pw@" + sentinelAddr + "?master=mymaster")
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(old); err == nil {
		t.Error("asynq.ParseRedisURI reached the master too; this test no longer shows why redisconn exists")
	}
}

func writeCA(t *testing.T) string {
	t.Helper()
	caFile, _, _ := writeCertChain(t, t.TempDir())
	return caFile
}

// writeCertChain writes a private CA and a server certificate it signed
// for localhost and 127.0.0.1, as PEM files.
func writeCertChain(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "refreshq test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", der), write("server.key", "EC PRIVATE KEY", keyDER)
}
