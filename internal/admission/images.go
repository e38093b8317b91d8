package admission

import (
	"encoding/json"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ImageUse is one image reference in an admitted object: where it is
// (for messages and JSON patches) and what was written.
type ImageUse struct {
	// Field is the field path as Kubernetes names it in messages
	// ("spec.template.spec.containers[0].image").
	Field string `json:"field"`
	// Pointer is the RFC 6901 JSON pointer of the field, for patches
	// ("/spec/template/spec/containers/0/image").
	Pointer string `json:"-"`
	// Role is "container", "init container", "ephemeral container" or
	// "image volume".
	Role string `json:"role"`
	// Name is the container's or volume's name.
	Name string `json:"name"`
	// Image is the reference as written.
	Image string `json:"image"`
}

// Kinds lists the kinds whose images admission decides, as "group/version
// Kind" ("" group for the core API).
var Kinds = []string{
	"/v1 Pod", "/v1 ReplicationController", "/v1 PodTemplate",
	"apps/v1 Deployment", "apps/v1 ReplicaSet", "apps/v1 StatefulSet", "apps/v1 DaemonSet",
	"batch/v1 Job", "batch/v1 CronJob",
}

// ErrUnknownKind is returned by ImagesOf for an object whose kind
// admission does not read.
type ErrUnknownKind struct{ Kind metav1.GroupVersionKind }

func (e ErrUnknownKind) Error() string {
	return fmt.Sprintf("customs does not read images of %s/%s %s", e.Kind.Group, e.Kind.Version, e.Kind.Kind)
}

// ImagesOf decodes raw, an object of kind gvk (the AdmissionRequest's
// kind), and returns every image reference in its pod spec: init
// containers, containers, ephemeral containers and image volumes, in that
// order.
// A kind not in Kinds is an ErrUnknownKind; an object that does not decode
// as its kind is an error naming the kind and the JSON problem.
func ImagesOf(gvk metav1.GroupVersionKind, raw []byte) ([]ImageUse, error) {
	uses, _, err := readObject(gvk, raw)
	return uses, err
}

// readObject is ImagesOf, also returning the annotations of the pod (or
// of the pod template: what the pods will carry).
func readObject(gvk metav1.GroupVersionKind, raw []byte) ([]ImageUse, map[string]string, error) {
	var spec *corev1.PodSpec
	var meta *metav1.ObjectMeta
	var prefix string
	var err error
	switch gvk.Group + "/" + gvk.Version + " " + gvk.Kind {
	case "/v1 Pod":
		var o corev1.Pod
		err = decodeObject(raw, &o)
		spec, meta, prefix = &o.Spec, &o.ObjectMeta, "spec"
	case "/v1 ReplicationController":
		var o corev1.ReplicationController
		err = decodeObject(raw, &o)
		if o.Spec.Template != nil {
			spec, meta, prefix = &o.Spec.Template.Spec, &o.Spec.Template.ObjectMeta, "spec.template.spec"
		}
	case "/v1 PodTemplate":
		var o corev1.PodTemplate
		err = decodeObject(raw, &o)
		spec, meta, prefix = &o.Template.Spec, &o.Template.ObjectMeta, "template.spec"
	case "apps/v1 Deployment":
		var o appsv1.Deployment
		err = decodeObject(raw, &o)
		spec, meta, prefix = &o.Spec.Template.Spec, &o.Spec.Template.ObjectMeta, "spec.template.spec"
	case "apps/v1 ReplicaSet":
		var o appsv1.ReplicaSet
		err = decodeObject(raw, &o)
		spec, meta, prefix = &o.Spec.Template.Spec, &o.Spec.Template.ObjectMeta, "spec.template.spec"
	case "apps/v1 StatefulSet":
		var o appsv1.StatefulSet
		err = decodeObject(raw, &o)
		spec, meta, prefix = &o.Spec.Template.Spec, &o.Spec.Template.ObjectMeta, "spec.template.spec"
	case "apps/v1 DaemonSet":
		var o appsv1.DaemonSet
		err = decodeObject(raw, &o)
		spec, meta, prefix = &o.Spec.Template.Spec, &o.Spec.Template.ObjectMeta, "spec.template.spec"
	case "batch/v1 Job":
		var o batchv1.Job
		err = decodeObject(raw, &o)
		spec, meta, prefix = &o.Spec.Template.Spec, &o.Spec.Template.ObjectMeta, "spec.template.spec"
	case "batch/v1 CronJob":
		var o batchv1.CronJob
		err = decodeObject(raw, &o)
		spec, meta, prefix = &o.Spec.JobTemplate.Spec.Template.Spec, &o.Spec.JobTemplate.Spec.Template.ObjectMeta, "spec.jobTemplate.spec.template.spec"
	default:
		return nil, nil, ErrUnknownKind{gvk}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("the %s does not decode: %v", gvk.Kind, err)
	}
	if spec == nil {
		return nil, nil, nil
	}
	return podSpecImages(spec, prefix), meta.Annotations, nil
}

// decodeObject reads a JSON object; an empty body is an error (the API
// server always sends the object on CREATE and UPDATE).
func decodeObject(raw []byte, into any) error {
	if len(raw) == 0 {
		return fmt.Errorf("the request carries no object")
	}
	return json.Unmarshal(raw, into)
}

func podSpecImages(s *corev1.PodSpec, prefix string) []ImageUse {
	ptr := "/" + jsonPointerPath(prefix)
	var out []ImageUse
	add := func(list, role string, i int, name, image string) {
		idx := strconv.Itoa(i)
		out = append(out, ImageUse{
			Field: prefix + "." + list + "[" + idx + "].image", Pointer: ptr + "/" + list + "/" + idx + "/image",
			Role: role, Name: name, Image: image,
		})
	}
	for i, c := range s.InitContainers {
		add("initContainers", "init container", i, c.Name, c.Image)
	}
	for i, c := range s.Containers {
		add("containers", "container", i, c.Name, c.Image)
	}
	for i, c := range s.EphemeralContainers {
		add("ephemeralContainers", "ephemeral container", i, c.Name, c.Image)
	}
	for i, v := range s.Volumes {
		if v.Image == nil {
			continue
		}
		idx := strconv.Itoa(i)
		out = append(out, ImageUse{
			Field: prefix + ".volumes[" + idx + "].image.reference", Pointer: ptr + "/volumes/" + idx + "/image/reference",
			Role: "image volume", Name: v.Name, Image: v.Image.Reference,
		})
	}
	return out
}

// jsonPointerPath turns a dotted field path of plain names into a JSON
// pointer path ("spec.template.spec" -> "spec/template/spec").
func jsonPointerPath(dotted string) string {
	b := []byte(dotted)
	for i := range b {
		if b[i] == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}
