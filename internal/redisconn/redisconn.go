package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/smallfile"
)

// Settings are everything it takes to reach Redis.
type Settings struct {
	// URL is REDIS_URL: redis://, rediss://, redis-socket:// or
	// redis-sentinel://. Its user and password are those of the Redis
	// that holds the data (the master, with Sentinel).
	URL string
	// SentinelUsername and SentinelPassword (REDIS_SENTINEL_USERNAME,
	// REDIS_SENTINEL_PASSWORD) authenticate to the sentinels of a
	// redis-sentinel:// URL, whose own credentials may differ from the
	// master's.
	SentinelUsername, SentinelPassword string
	// CACert (REDIS_CA_CERT) is a PEM file of the certificate
	// authorities to trust for rediss:// (and, with redis-sentinel://, to
	// turn TLS on for the sentinels and the master) instead of the
	// system's.
	CACert string
}

// maxCAFile bounds what REDIS_CA_CERT may name: a bundle of certificates
// is kilobytes.
const maxCAFile = 1 << 20

// Options returns asynq's connection options for s. Its errors name the
// setting at fault and never contain a password.
func (s Settings) Options() (asynq.RedisConnOpt, error) {
	u, err := url.Parse(s.URL)
	if err != nil || u.Scheme == "" {
		return nil, errors.New("REDIS_URL is not a URL; write e.g. redis://user:PASSWORD@host:6379/0")
	}
	var tlsConf *tls.Config
	if s.CACert != "" {
		if u.Scheme != "rediss" && u.Scheme != "redis-sentinel" {
			return nil, fmt.Errorf("REDIS_CA_CERT is set but REDIS_URL is %s://, which does not use TLS; use rediss://", u.Scheme)
		}
		if tlsConf, err = loadCA(s.CACert); err != nil {
			return nil, err
		}
	}
	if (s.SentinelUsername != "" || s.SentinelPassword != "") && u.Scheme != "redis-sentinel" {
		return nil, fmt.Errorf("REDIS_SENTINEL_USERNAME or REDIS_SENTINEL_PASSWORD is set but REDIS_URL is %s://; they are for redis-sentinel:// only", u.Scheme)
	}
	switch u.Scheme {
	case "redis", "rediss":
		return s.tcpOptions(u, tlsConf)
	case "redis-socket":
		return socketOptions(u)
	case "redis-sentinel":
		return s.sentinelOptions(u, tlsConf)
	}
	return nil, fmt.Errorf("REDIS_URL has scheme %q; use redis://, rediss://, redis-socket:// or redis-sentinel://", u.Scheme)
}

// tcpOptions are those of a redis:// or rediss:// URL.
func (s Settings) tcpOptions(u *url.URL, tlsConf *tls.Config) (asynq.RedisConnOpt, error) {
	// go-redis's own parser keeps the user name, the database and its
	// query options (dial_timeout, ...).
	ro, err := redis.ParseURL(s.URL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL is not valid: %s; write e.g. %s://user:PASSWORD@host:6379/0", Redact(err.Error(), s.URL), u.Scheme)
	}
	if tlsConf != nil {
		tlsConf.ServerName = ro.TLSConfig.ServerName
		ro.TLSConfig = tlsConf
	}
	return asynq.RedisClientOpt{
		Network: ro.Network, Addr: ro.Addr, Username: ro.Username, Password: ro.Password, DB: ro.DB,
		DialTimeout: ro.DialTimeout, ReadTimeout: ro.ReadTimeout, WriteTimeout: ro.WriteTimeout,
		PoolSize: ro.PoolSize, TLSConfig: ro.TLSConfig,
	}, nil
}

// socketOptions are those of a redis-socket:// URL.
func socketOptions(u *url.URL) (asynq.RedisConnOpt, error) {
	if u.Path == "" {
		return nil, errors.New("REDIS_URL: redis-socket:// needs the socket's path, e.g. redis-socket:///run/redis.sock?db=0")
	}
	db, err := database(u.Query().Get("db"))
	if err != nil {
		return nil, err
	}
	user, pass := credentials(u)
	return asynq.RedisClientOpt{Network: "unix", Addr: u.Path, Username: user, Password: pass, DB: db}, nil
}

// sentinelOptions are those of a redis-sentinel:// URL.
func (s Settings) sentinelOptions(u *url.URL, tlsConf *tls.Config) (asynq.RedisConnOpt, error) {
	master := u.Query().Get("master")
	if master == "" {
		return nil, errors.New("REDIS_URL: redis-sentinel:// needs the master's name, e.g. redis-sentinel://host1:26379,host2:26379/0?master=mymaster")
	}
	var addrs []string
	for _, a := range strings.Split(u.Host, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if _, _, err := net.SplitHostPort(a); err != nil {
				a = net.JoinHostPort(a, "26379")
			}
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("REDIS_URL: redis-sentinel:// needs at least one sentinel address, host:port")
	}
	dbText := strings.Trim(u.Path, "/")
	if dbText == "" {
		dbText = u.Query().Get("db")
	}
	db, err := database(dbText)
	if err != nil {
		return nil, err
	}
	if tlsConf != nil {
		// The sentinels report the master by address: verify its
		// certificate against the CA, and its name as the sentinels give
		// it.
		tlsConf.ServerName = ""
	}
	user, pass := credentials(u)
	return asynq.RedisFailoverClientOpt{
		MasterName: master, SentinelAddrs: addrs,
		SentinelUsername: s.SentinelUsername, SentinelPassword: s.SentinelPassword,
		Username: user, Password: pass, DB: db, TLSConfig: tlsConf,
	}, nil
}

// Client returns a go-redis client for opt, which Options made.
func Client(opt asynq.RedisConnOpt) (redis.UniversalClient, error) {
	c, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("unsupported Redis connection option %T", opt)
	}
	return c, nil
}

// credentials are the user and password of a redis-socket:// or
// redis-sentinel:// URL. A lone userinfo (redis-sentinel://secret@host) is
// the password, as redis-cli reads it; go-redis, which reads redis:// and
// rediss:// URLs (tcpOptions), takes it for the user name instead.
func credentials(u *url.URL) (user, pass string) {
	if u.User == nil {
		return "", ""
	}
	if p, ok := u.User.Password(); ok {
		return u.User.Username(), p
	}
	return "", u.User.Username()
}

func database(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("REDIS_URL: database %q is not a whole number ≥ 0", s)
	}
	return n, nil
}

// loadCA reads a PEM bundle into a TLS configuration that trusts only it.
func loadCA(path string) (*tls.Config, error) {
	b, err := smallfile.Read(path, maxCAFile)
	var big *smallfile.TooLargeError
	switch {
	case errors.As(err, &big):
		return nil, fmt.Errorf("REDIS_CA_CERT: %s is over %d KiB; it should hold PEM certificates only", path, maxCAFile>>10)
	case err != nil:
		return nil, fmt.Errorf("REDIS_CA_CERT: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("REDIS_CA_CERT: %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// SilenceDialErrors stops go-redis from logging each failed dial, for a
// process whose own errors already say what failed (cmd/enqueue).
func SilenceDialErrors() { redis.SetLogger(discardLogger{}) }

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}
