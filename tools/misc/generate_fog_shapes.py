"""Write the built-in fog-shapes clear-to-fog domain-adaptation data set.

Example:
    python tools/misc/generate_fog_shapes.py data/fogshapes --seed 0
    python tools/misc/generate_fog_shapes.py data/fogshapes --num-source 800 \
        --num-target 800 --num-val 200 --img-size 256 --overwrite
"""
import argparse
import time

from mmssda.datasets.synthetic import generate_fog_shapes


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the synthetic clear-to-fog shapes benchmark')
    parser.add_argument('out_dir', help='output folder (empty or absent)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-source', type=int, default=400,
                        help='labelled clear training images')
    parser.add_argument('--num-target', type=int, default=400,
                        help='foggy training images')
    parser.add_argument('--num-val', type=int, default=100,
                        help='foggy held-out images (target_val)')
    parser.add_argument('--num-source-val', type=int, default=None,
                        help='clear held-out images (source_val); '
                        'defaults to --num-val')
    parser.add_argument('--img-size', type=int, nargs='+', default=[192],
                        help='side, or width height')
    parser.add_argument('--fog-beta', type=float, nargs='+',
                        default=[0.02, 0.04],
                        help='fog attenuation coefficient, or a min max '
                        'range')
    parser.add_argument('--fog-airlight', type=float, nargs='+',
                        default=[0.75, 0.95],
                        help='grey airlight in [0, 1], or a min max range')
    parser.add_argument('--source-fake-fda-beta', type=float, default=0.02)
    parser.add_argument('--target-fake-fda-beta', type=float, default=0.01)
    parser.add_argument('--no-fog', action='store_true',
                        help='write the target splits clear (analysis)')
    parser.add_argument('--save-masks', action='store_true',
                        help='also write instance-id PNG masks')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a fog-shapes data set in out_dir')
    return parser.parse_args(argv)


def _scalar_or_pair(values, name):
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return tuple(values)
    raise SystemExit(f'error: {name} takes one or two numbers, got {values}')


def main(argv=None):
    args = parse_args(argv)
    img_size = _scalar_or_pair(args.img_size, '--img-size')
    start = time.perf_counter()
    try:
        meta = generate_fog_shapes(
            args.out_dir,
            seed=args.seed,
            num_source=args.num_source,
            num_target=args.num_target,
            num_val=args.num_val,
            num_source_val=args.num_source_val,
            img_size=img_size,
            fog=not args.no_fog,
            fog_beta=_scalar_or_pair(args.fog_beta, '--fog-beta'),
            fog_airlight=_scalar_or_pair(args.fog_airlight,
                                         '--fog-airlight'),
            source_fake_fda_beta=args.source_fake_fda_beta,
            target_fake_fda_beta=args.target_fake_fda_beta,
            save_masks=args.save_masks,
            overwrite=args.overwrite)
    except (FileExistsError, ValueError) as exc:
        raise SystemExit(f'error: {exc}')
    elapsed = time.perf_counter() - start
    for split, info in meta['counts'].items():
        extra = f', {info["instances"]} objects' if 'instances' in info \
            else ''
        print(f'{split:12s} {info["images"]:6d} images{extra}')
    print(f'wrote {args.out_dir} in {elapsed:.1f} s '
          f'(classes: {", ".join(meta["classes"])})')
    return 0


if __name__ == '__main__':
    main()
