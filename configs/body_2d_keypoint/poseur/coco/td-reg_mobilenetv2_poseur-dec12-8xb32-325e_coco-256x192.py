# Poseur, MobileNetV2, COCO 256x192, 12 decoder layers instead of 6.
_base_ = ['./td-reg_mobilenetv2_poseur-8xb32-325e_coco-256x192.py']

model = dict(head=dict(query_decoder=dict(num_layers=12)))
