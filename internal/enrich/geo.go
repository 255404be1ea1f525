package enrich

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/oschwald/maxminddb-golang/v2"
)

// GeoIP looks addresses up in MaxMind databases (GeoLite2/GeoIP2 City or
// Country, and ASN) through oschwald/maxminddb-golang: MaxMind's own
// reference for the format points to it, it is maintained, memory-maps
// the file and reads records without copying the database, and a
// lookup's record offset lets a caller cache what it decoded once per
// network rather than per address.
//
// The readers are safe for concurrent use; decoded records are cached per
// Worker, by the record's offset, as the JSON Vigil writes.
type GeoIP struct {
	city, asn     *maxminddb.Reader
	cityDB, asnDB string // database types, the enrichments' provider
}

// OpenGeoIP opens the city (or country) and ASN databases; either path
// may be empty.
func OpenGeoIP(cityPath, asnPath string) (*GeoIP, error) {
	g := &GeoIP{}
	if cityPath != "" {
		r, err := maxminddb.Open(cityPath)
		if err != nil {
			return nil, fmt.Errorf("geoip %s: %w", cityPath, err)
		}
		g.city, g.cityDB = r, r.Metadata.DatabaseType
	}
	if asnPath != "" {
		r, err := maxminddb.Open(asnPath)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("geoip %s: %w", asnPath, err)
		}
		g.asn, g.asnDB = r, r.Metadata.DatabaseType
	}
	return g, nil
}

// Close releases the databases.
func (g *GeoIP) Close() {
	if g == nil {
		return
	}
	if g.city != nil {
		g.city.Close()
	}
	if g.asn != nil {
		g.asn.Close()
	}
}

// cityRecord is what Vigil reads of a City or Country record.
type cityRecord struct {
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
	Continent struct {
		Code  string            `maxminddb:"code"`
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"continent"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
	Postal struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"postal"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
}

type asnRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// geoCache holds one worker's decoded records: the OCSF location and
// autonomous_system objects as JSON, by record offset (nil: the record
// has nothing to say).
type geoCache struct {
	city, asn map[uintptr][]byte
}

const maxGeoCache = 1 << 16

// lookup returns the OCSF location and autonomous_system objects (JSON)
// of a, either nil when the databases do not know it.
func (g *GeoIP) lookup(a netip.Addr, c *geoCache) (loc, as []byte, err error) {
	if g == nil {
		return nil, nil, nil
	}
	if g.city != nil {
		res := g.city.Lookup(a)
		if err := res.Err(); err != nil {
			return nil, nil, err
		}
		if res.Found() {
			off := res.Offset()
			b, ok := c.city[off]
			if !ok {
				var rec cityRecord
				if err := res.Decode(&rec); err != nil {
					return nil, nil, err
				}
				b = locationJSON(&rec, g.cityDB)
				if len(c.city) >= maxGeoCache {
					clear(c.city)
				}
				c.city[off] = b
			}
			loc = b
		}
	}
	if g.asn != nil {
		res := g.asn.Lookup(a)
		if err := res.Err(); err != nil {
			return nil, nil, err
		}
		if res.Found() {
			off := res.Offset()
			b, ok := c.asn[off]
			if !ok {
				var rec asnRecord
				if err := res.Decode(&rec); err != nil {
					return nil, nil, err
				}
				if rec.Number != 0 || rec.Org != "" {
					b = asJSON(&rec)
				}
				if len(c.asn) >= maxGeoCache {
					clear(c.asn)
				}
				c.asn[off] = b
			}
			as = b
		}
	}
	return loc, as, nil
}

// locationJSON is OCSF's location object: city, continent, country (ISO
// 3166-1 alpha-2), region (the first subdivision's code), postal_code,
// coordinates [longitude, latitude] and provider.
func locationJSON(r *cityRecord, provider string) []byte {
	var w jw
	w.open()
	if n := r.City.Names["en"]; n != "" {
		w.str("city", n)
	}
	if n := r.Continent.Names["en"]; n != "" {
		w.str("continent", n)
	}
	if lat, lon := r.Location.Latitude, r.Location.Longitude; lat != nil && lon != nil {
		w.key("coordinates")
		w.b = append(w.b, '[')
		w.b = strconv.AppendFloat(w.b, *lon, 'f', -1, 64)
		w.b = append(w.b, ',')
		w.b = strconv.AppendFloat(w.b, *lat, 'f', -1, 64)
		w.b = append(w.b, ']')
	}
	if r.Country.ISOCode != "" {
		w.str("country", r.Country.ISOCode)
	}
	if r.Postal.Code != "" {
		w.str("postal_code", r.Postal.Code)
	}
	if provider != "" {
		w.str("provider", provider)
	}
	if len(r.Subdivisions) > 0 && r.Subdivisions[0].ISOCode != "" {
		w.str("region", r.Subdivisions[0].ISOCode)
	}
	if len(w.b) == 1 {
		return nil
	}
	w.close()
	return w.b
}

// asJSON is OCSF's autonomous_system object: number and name.
func asJSON(r *asnRecord) []byte {
	var w jw
	w.open()
	if r.Org != "" {
		w.str("name", r.Org)
	}
	if r.Number != 0 {
		w.key("number")
		w.b = strconv.AppendUint(w.b, uint64(r.Number), 10)
	}
	w.close()
	return w.b
}

// jw writes JSON objects by hand: the enricher's output is appended to
// the event's bytes, and a map through encoding/json would cost more than
// the enrichment itself.
type jw struct {
	b     []byte
	first bool
}

func (w *jw) open() { w.b = append(w.b, '{'); w.first = true }
func (w *jw) close() {
	w.b = append(w.b, '}')
	w.first = false
}

func (w *jw) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = appendString(w.b, k)
	w.b = append(w.b, ':')
}

func (w *jw) str(k, v string) {
	w.key(k)
	w.b = appendString(w.b, v)
}

func (w *jw) raw(k string, v []byte) {
	w.key(k)
	w.b = append(w.b, v...)
}

func (w *jw) int(k string, v int) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, int64(v), 10)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string (without HTML escaping, as
// ocsf.Event.Marshal writes).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func strList(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}
