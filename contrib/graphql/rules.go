package gqlcache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/layercache/layercache"
)

// fieldRef names a field of an object type the way gqlgen's FieldContext
// does, so that a lookup per resolved field builds no string.
type fieldRef struct{ object, field string }

// ruleSet is what Validate derives from the options and the schema: how each
// cached field is cached. It is read-only once built.
type ruleSet struct {
	schema *ast.Schema
	fields map[fieldRef]*rule
	// expand maps a configured interface coordinate to the object
	// coordinates it stands for, for InvalidateFields.
	expand map[string][]string
}

// rule is how one field of one object type is cached.
type rule struct {
	coordinate string // "Book.reviews"
	stem       string // KeyPrefix + coordinate: the start of every key
	scope      Scope
	parentID   func(any) (string, bool) // nil on the query root
	tags       []string                 // the field's tag and Policy.Tags
	tagsFor    func(context.Context, Field) []string
	opts       []layercache.EntryOption // ends with WithTags(tags...)
}

// entryOptions returns the options for one resolution: the precomputed ones,
// or a copy whose WithTags also carries the tags of TagsFor.
func (r *rule) entryOptions(ctx context.Context, f Field) []layercache.EntryOption {
	if r.tagsFor == nil {
		return r.opts
	}
	extra := r.tagsFor(ctx, f)
	if len(extra) == 0 {
		return r.opts
	}
	opts := slices.Clone(r.opts)
	opts[len(opts)-1] = layercache.WithTags(append(slices.Clip(r.tags), extra...)...)
	return opts
}

// hint is what @cacheControl says about a field.
type hint struct {
	maxAge  int
	private bool
}

// buildRules resolves the configured policies and the schema's directives
// into rules, and reports every problem it finds at once.
func buildRules(s *ast.Schema, o *Options) (*ruleSet, error) {
	b := &builder{schema: s, opts: o, set: &ruleSet{
		schema: s,
		fields: map[fieldRef]*rule{},
		expand: map[string][]string{},
	}}
	b.checkDirective()
	policies := b.expandPolicies()
	for _, name := range sortedKeys(s.Types) {
		def := s.Types[name]
		if def.Kind != ast.Object || strings.HasPrefix(name, "__") {
			continue
		}
		for _, f := range def.Fields {
			if !strings.HasPrefix(f.Name, "__") {
				b.addField(def, f, policies)
			}
		}
	}
	b.checkParents()
	return b.set, errors.Join(b.errs...)
}

type builder struct {
	schema *ast.Schema
	opts   *Options
	set    *ruleSet
	errs   []error
	// directive is the declared cache directive, nil when the schema
	// declares none or directives are off.
	directive *ast.DirectiveDefinition
}

func (b *builder) fail(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("gqlcache: "+format, args...))
}

func (b *builder) directiveName() string {
	if b.opts.Directive == "" {
		return "cacheControl"
	}
	return b.opts.Directive
}

// checkDirective finds the cache directive's declaration and checks that its
// arguments have the types the extension reads.
func (b *builder) checkDirective() {
	if b.opts.Directive == "-" {
		return
	}
	d := b.schema.Directives[b.directiveName()]
	if d == nil {
		return
	}
	b.directive = d
	want := map[string]string{"maxAge": "Int", "scope": "", "inheritMaxAge": "Boolean"}
	for _, a := range d.Arguments {
		w, known := want[a.Name]
		switch {
		case !known:
		case a.Name == "scope":
			enum := b.schema.Types[a.Type.Name()]
			if a.Type.Elem != nil || enum == nil || enum.Kind != ast.Enum ||
				enum.EnumValues.ForName("PUBLIC") == nil || enum.EnumValues.ForName("PRIVATE") == nil {
				b.fail("@%s(scope:) must be an enum with the values PUBLIC and PRIVATE, not %s", d.Name, a.Type)
			}
		case a.Type.Elem != nil || a.Type.Name() != w:
			b.fail("@%s(%s:) must be of type %s, not %s", d.Name, a.Name, w, a.Type)
		}
	}
}

// expandPolicies maps each object coordinate to its policy, expanding
// interface coordinates, and reports coordinates the schema does not have.
func (b *builder) expandPolicies() map[string]Policy {
	out := map[string]Policy{}
	for _, coord := range sortedKeys(b.opts.Fields) {
		p := b.opts.Fields[coord]
		typeName, fieldName, _ := strings.Cut(coord, ".")
		def := b.schema.Types[typeName]
		if def == nil {
			b.fail("Fields[%q]: the schema has no type %s", coord, typeName)
			continue
		}
		var objects []*ast.Definition
		switch def.Kind {
		case ast.Object:
			objects = []*ast.Definition{def}
		case ast.Interface:
			objects = b.schema.GetPossibleTypes(def)
			for _, o := range objects {
				b.set.expand[coord] = append(b.set.expand[coord], o.Name+"."+fieldName)
			}
		default:
			b.fail("Fields[%q]: %s is a %s; only fields of objects and interfaces are cached", coord, typeName, strings.ToLower(string(def.Kind)))
			continue
		}
		if def.Fields.ForName(fieldName) == nil {
			b.fail("Fields[%q]: type %s has no field %s", coord, typeName, fieldName)
			continue
		}
		for _, o := range objects {
			if b.isOperationType(o) {
				b.fail("Fields[%q]: fields of the %s type are never cached", coord, o.Name)
				continue
			}
			out[o.Name+"."+fieldName] = p
		}
	}
	return out
}

func (b *builder) isOperationType(def *ast.Definition) bool {
	return def == b.schema.Mutation || def == b.schema.Subscription
}

func (b *builder) addField(obj *ast.Definition, f *ast.FieldDefinition, policies map[string]Policy) {
	coord := obj.Name + "." + f.Name
	if b.isOperationType(obj) {
		return // Apollo ignores hints on mutation fields too.
	}
	h := b.hint(coord, f)
	p, configured := policies[coord]
	if !configured && h.maxAge <= 0 {
		return
	}
	ttl := p.TTL
	if ttl == 0 && h.maxAge > 0 {
		ttl = time.Duration(h.maxAge) * time.Second
	}
	scope := p.Scope
	if scope == 0 {
		scope = Public
		if h.private {
			scope = Private
		}
	}
	r := &rule{
		coordinate: coord,
		stem:       b.opts.KeyPrefix + coord,
		scope:      scope,
		tagsFor:    p.TagsFor,
	}
	if obj != b.schema.Query {
		r.parentID = b.parentID(obj)
		if r.parentID == nil {
			b.fail("%s is cached but objects of type %s have no identity: add Options.Parents[%q]", coord, obj.Name, obj.Name)
		}
	}
	if scope == Private && b.opts.Caller == nil {
		b.fail("%s is cached with private scope, which needs Options.Caller", coord)
	}
	r.tags = append([]string{fieldTag(b.opts.KeyPrefix, coord)}, p.Tags...)
	if ttl > 0 {
		r.opts = append(r.opts, layercache.WithTTL(ttl))
	}
	r.opts = append(r.opts, p.EntryOptions...)
	r.opts = append(r.opts, layercache.WithTags(r.tags...))
	b.set.fields[fieldRef{obj.Name, f.Name}] = r
}

// hint reads the directive on the field and on the type it returns.
func (b *builder) hint(coord string, f *ast.FieldDefinition) hint {
	if b.directive == nil {
		return hint{}
	}
	var h hint
	fieldMaxAge, fieldHasMaxAge, inherit := b.readDirective(coord, f.Directives, &h)
	if fieldHasMaxAge {
		h.maxAge = fieldMaxAge
	}
	if ret := b.schema.Types[f.Type.Name()]; ret != nil {
		typeMaxAge, typeHasMaxAge, _ := b.readDirective(ret.Name, ret.Directives, &h)
		if !fieldHasMaxAge && !inherit && typeHasMaxAge {
			h.maxAge = typeMaxAge
		}
	}
	return h
}

// readDirective reads one use of the directive; a PRIVATE scope is recorded
// in h, since either the field or its type can make a field private.
func (b *builder) readDirective(where string, dirs ast.DirectiveList, h *hint) (maxAge int, hasMaxAge, inherit bool) {
	d := dirs.ForName(b.directive.Name)
	if d == nil {
		return 0, false, false
	}
	if a := d.Arguments.ForName("maxAge"); a != nil && a.Value != nil && a.Value.Kind != ast.NullValue {
		n, err := strconv.Atoi(a.Value.Raw)
		switch {
		case a.Value.Kind != ast.IntValue || err != nil:
			b.fail("@%s(maxAge: %s) on %s is not an Int", d.Name, a.Value.Raw, where)
		case n < 0:
			b.fail("@%s(maxAge: %d) on %s is negative", d.Name, n, where)
		default:
			maxAge, hasMaxAge = n, true
		}
	}
	if a := d.Arguments.ForName("scope"); a != nil && a.Value != nil && a.Value.Raw == "PRIVATE" {
		h.private = true
	}
	if a := d.Arguments.ForName("inheritMaxAge"); a != nil && a.Value != nil && a.Value.Raw == "true" {
		inherit = true
	}
	return maxAge, hasMaxAge, inherit
}

// parentID returns the identity function for objects of obj's type: its
// own, or the first of its interfaces'.
func (b *builder) parentID(obj *ast.Definition) func(any) (string, bool) {
	if f := b.opts.Parents[obj.Name]; f != nil {
		return f
	}
	for _, iface := range obj.Interfaces {
		if f := b.opts.Parents[iface]; f != nil {
			return f
		}
	}
	return nil
}

func (b *builder) checkParents() {
	for _, name := range sortedKeys(b.opts.Parents) {
		def := b.schema.Types[name]
		if def == nil || (def.Kind != ast.Object && def.Kind != ast.Interface) {
			b.fail("Parents[%q]: the schema has no object or interface type %s", name, name)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func fieldTag(prefix, coordinate string) string {
	return prefix + "field:" + coordinate
}
