// Command kvcollections prints the keyvault collections config for channel
// "keys": `kvcollections -n 3` (Registry1MSP..Registry3MSP) or
// `kvcollections Registry1MSP Registry2MSP ...`. Used by the network launcher
// when the consortium size differs from the committed
// keyvault/collections_config.json.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/synthreg/synthreg/chaincode/keyvault"
)

func main() {
	n := flag.Int("n", 3, "number of registries (ignored when MSP IDs are given)")
	flag.Parse()
	msps := flag.Args()
	if len(msps) == 0 {
		msps = keyvault.ConsortiumMSPs(*n)
	}
	raw, err := keyvault.CollectionsJSON(msps)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvcollections:", err)
		os.Exit(2)
	}
	os.Stdout.Write(raw)
}
