// Command otelhec is an OpenTelemetry Collector with only what the export
// tests need: the Splunk HEC receiver (with indexer acknowledgement
// through the ack extension, tokens through bearertokenauth) and the file
// exporter, so a test can read back what was indexed.
package main

import (
	"log"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/receiver"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/ackextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/splunkhecreceiver"
)

// sourceStamp is set by .ci/install to a digest of this module's
// sources, so that a changed source is rebuilt and an unchanged one is
// not.
var sourceStamp = "unset"

func factories() (otelcol.Factories, error) {
	var f otelcol.Factories
	var err error
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](splunkhecreceiver.NewFactory()); err != nil {
		return f, err
	}
	if f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](fileexporter.NewFactory()); err != nil {
		return f, err
	}
	if f.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](ackextension.NewFactory(), bearertokenauthextension.NewFactory()); err != nil {
		return f, err
	}
	f.Processors = map[component.Type]processor.Factory{}
	f.Connectors = map[component.Type]connector.Factory{}
	return f, nil
}

func main() {
	info := component.BuildInfo{Command: "otelhec", Description: "Splunk HEC receiver for Vigil's export tests", Version: sourceStamp}
	cmd := otelcol.NewCommand(otelcol.CollectorSettings{BuildInfo: info, Factories: factories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory()}, DefaultScheme: "file"}}})
	if err := cmd.Execute(); err != nil {
		log.Fatal(err)
	}
}
