// Command etcdserver is the etcd server, built from the etcd module at
// the version Vigil's tests embed (go.etcd.io/etcd/server/v3 v3.7.3), so
// the chaos harness runs three real etcd members as processes of their
// own, each in its network namespace.
//
// It is a module of its own because etcd's modules carry replace
// directives (so `go install go.etcd.io/etcd/server/v3@v3.7.3` is refused)
// and its command-line packages need dependencies (cobra) that Vigil does
// not: building it here keeps them out of Vigil's go.mod.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
