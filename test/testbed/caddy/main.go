// The test bed's edge proxy: Caddy with its standard modules, as the caddy:2 image builds it (a main of its own
// so that `caddy version` reports the version of Caddy it was built from).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	caddycmd.Main()
}
